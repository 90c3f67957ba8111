/**
 * Socket tokens: short-lived signed tokens (JWT, HS256, via `jose`) that the realtime tier
 * verifies on every connect without reading the database. Each names the session (the bearer
 * token's row id, claim `sid`) it was minted under, so revoking that session revokes it too
 * (see revocations.ts). A token without `sid` (minted before sessions were named) is invalid.
 */
import { createHmac, randomUUID } from "node:crypto";
import { SignJWT, errors, jwtVerify } from "jose";

export type SocketTokenResult =
  | { ok: true; userId: number; sessionId: number; expiresAt: Date }
  | { ok: false; reason: "invalid" | "expired" | "revoked" };

const AUDIENCE = "hypercast:socket";

export interface SocketTokenSigner {
  sign(userId: number, sessionId: number): Promise<string>;
  verify(token: string): Promise<SocketTokenResult>;
}

export function createSocketTokenSigner(secretKeyBase: string, ttlSeconds: number): SocketTokenSigner {
  // A key of its own, derived from the base secret, so no other signature can pass for a socket token.
  const key = createHmac("sha256", secretKeyBase).update("hypercast socket token v1").digest();
  return {
    async sign(userId, sessionId) {
      return new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(String(userId))
        .setJti(randomUUID()) // every token is distinct, even two issued in the same second
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], audience: AUDIENCE });
        const userId = Number(payload.sub);
        const sessionId = payload["sid"];
        if (!Number.isSafeInteger(userId) || userId <= 0 || payload.exp === undefined) return { ok: false, reason: "invalid" };
        if (typeof sessionId !== "number" || !Number.isSafeInteger(sessionId) || sessionId <= 0) return { ok: false, reason: "invalid" };
        return { ok: true, userId, sessionId, expiresAt: new Date(payload.exp * 1000) };
      } catch (error) {
        return { ok: false, reason: error instanceof errors.JWTExpired ? "expired" : "invalid" };
      }
    },
  };
}
