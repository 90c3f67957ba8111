/**
 * Socket tokens: short-lived signed tokens (JWT, HS256) that the realtime tier verifies on every
 * connect without reading the database. Signed with `jose`; verified here, synchronously, with
 * node:crypto, so the realtime tier can decide a WebSocket upgrade inside uWebSockets.js's upgrade
 * callback (an upgrade answered later, from a promise, can lose the fresh socket: see
 * lib/realtime/transport.ts).
 *
 *     const signer = createSocketTokenSigner(secretKeyBase, 86400)
 *     signer.verifyNow(await signer.sign(42)) // → { ok: true, userId: 42, expiresAt }
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { SignJWT } from "jose";

export type SocketTokenResult =
  | { ok: true; userId: number; expiresAt: Date }
  | { ok: false; reason: "invalid" | "expired" };

const AUDIENCE = "hypercast:socket";
const INVALID = Object.freeze({ ok: false, reason: "invalid" } as const);
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export interface SocketTokenSigner {
  sign(userId: number): Promise<string>;
  verify(token: string): Promise<SocketTokenResult>;
  /** The same verification, synchronous (HMAC-SHA256 over a few hundred bytes). */
  verifyNow(token: string): SocketTokenResult;
}

export function createSocketTokenSigner(secretKeyBase: string, ttlSeconds: number): SocketTokenSigner {
  // A key of its own, derived from the base secret, so no other signature can pass for a socket token.
  const key = createHmac("sha256", secretKeyBase).update("hypercast socket token v1").digest();

  /**
   * A compact JWS with header `{"alg":"HS256"}` (no `crit`), a valid HMAC-SHA256 signature under
   * our key, audience `hypercast:socket`, a numeric `exp` still in the future, a numeric `iat`
   * and `nbf` (when present; `nbf` not in the future) and a positive integer subject — what
   * jose's `jwtVerify(token, key, { algorithms: ["HS256"], audience })` accepts, without clock tolerance.
   */
  function verifyNow(token: string): SocketTokenResult {
    const parts = token.split(".");
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return INVALID;
    const [header, payload, signature] = parts as [string, string, string];
    const expected = createHmac("sha256", key).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return INVALID;
    const head = parseObject(header);
    const claims = parseObject(payload);
    if (head === undefined || head["alg"] !== "HS256" || "crit" in head || claims === undefined) return INVALID;
    const { aud, exp, nbf, iat, sub } = claims;
    if (aud !== AUDIENCE && !(Array.isArray(aud) && aud.includes(AUDIENCE))) return INVALID;
    if (typeof exp !== "number" || (iat !== undefined && typeof iat !== "number")) return INVALID;
    const now = Math.floor(Date.now() / 1000);
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > now)) return INVALID;
    if (exp <= now) return { ok: false, reason: "expired" };
    const userId = typeof sub === "string" && /^\d+$/.test(sub) ? Number(sub) : Number.NaN;
    if (!Number.isSafeInteger(userId) || userId <= 0) return INVALID;
    return { ok: true, userId, expiresAt: new Date(exp * 1000) };
  }

  return {
    async sign(userId) {
      return new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(String(userId))
        .setJti(randomUUID()) // every token is distinct, even two issued in the same second
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
    async verify(token) {
      return verifyNow(token);
    },
    verifyNow,
  };
}

function parseObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
