/**
 * Socket tokens: short-lived signed tokens (JWT, HS256, via `jose`) that the realtime tier
 * verifies on every connect without reading the database. A token carries its user's pinned API
 * version as it stood when the token was minted (claim `api_version`): what a socket that names
 * no `api_version` is served in, without a database read at the upgrade.
 */
import { createHmac, randomUUID } from "node:crypto";
import { SignJWT, errors, jwtVerify } from "jose";
import { isApiVersion, type ApiVersion } from "../versions.ts";

export type SocketTokenResult =
  | { ok: true; userId: number; expiresAt: Date; pinnedVersion: ApiVersion | undefined }
  | { ok: false; reason: "invalid" | "expired" };

const AUDIENCE = "hypercast:socket";

export interface SocketTokenSigner {
  sign(userId: number, pinnedVersion?: ApiVersion): Promise<string>;
  verify(token: string): Promise<SocketTokenResult>;
}

export function createSocketTokenSigner(secretKeyBase: string, ttlSeconds: number): SocketTokenSigner {
  // A key of its own, derived from the base secret, so no other signature can pass for a socket token.
  const key = createHmac("sha256", secretKeyBase).update("hypercast socket token v1").digest();
  return {
    async sign(userId, pinnedVersion) {
      return new SignJWT(pinnedVersion === undefined ? {} : { api_version: pinnedVersion })
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
        if (!Number.isSafeInteger(userId) || userId <= 0 || payload.exp === undefined) return { ok: false, reason: "invalid" };
        // A pin this code no longer serves (or none) leaves the choice to the caller's default.
        const pinnedVersion = isApiVersion(payload["api_version"]) ? payload["api_version"] : undefined;
        return { ok: true, userId, expiresAt: new Date(payload.exp * 1000), pinnedVersion };
      } catch (error) {
        return { ok: false, reason: error instanceof errors.JWTExpired ? "expired" : "invalid" };
      }
    },
  };
}
