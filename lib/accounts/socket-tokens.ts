/**
 * Socket tokens: short-lived signed tokens (JWT, HS256) that the realtime tier verifies on every
 * connect without reading the database. Each names the session (the bearer token's row id, claim
 * `sid`) it was minted under, so revoking that session revokes it too (see revocations.ts); a token
 * without `sid` is invalid. It also carries its user's pinned API version as it stood when the token
 * was minted (claim `api_version`): what a socket that names no `api_version` is served in, without
 * a database read at the upgrade, unless the pin changed since (accounts replaces it, see pin-changes.ts).
 * Signed and verified here with node:crypto (a compact JWS, HS256): verifying synchronously lets the
 * realtime tier decide a WebSocket upgrade inside uWebSockets.js's upgrade callback (an upgrade
 * answered later costs more, see lib/realtime/transport.ts), and signing needs no JWT library in
 * the server (jose, some 180 modules and about 10 MiB of RSS). The tests hold both sides to jose's
 * `SignJWT` and `jwtVerify`.
 *
 *     const signer = createSocketTokenSigner(secretKeyBase, 86400)
 *     signer.verifyNow(await signer.sign(42, 7, 1)) // → { ok: true, userId: 42, sessionId: 7, expiresAt, issuedAt, pinnedVersion: 1 }
 */
import { createHmac, hash, randomUUID, timingSafeEqual } from "node:crypto";
import { isApiVersion, type ApiVersion } from "../versions.ts";

export type SocketTokenResult =
  | {
      ok: true;
      userId: number;
      sessionId: number;
      expiresAt: Date;
      /** When it was minted (`iat`, whole seconds; the epoch when absent). */
      issuedAt: Date;
      pinnedVersion: ApiVersion | undefined;
    }
  | { ok: false; reason: "invalid" | "expired" | "revoked" };

const AUDIENCE = "hypercast:socket";
const INVALID = Object.freeze({ ok: false, reason: "invalid" } as const);
/** Three non-empty base64url parts, and nothing else. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** The protected header of every token we sign: `{"alg":"HS256"}`, base64url. */
const HEADER = Buffer.from(JSON.stringify({ alg: "HS256" })).toString("base64url");
/** An HMAC-SHA256 signature, base64url without padding: 32 bytes in 43 characters. */
const SIGNATURE_CHARS = 43;
/**
 * Where a token's signature and its payload are decoded: one buffer for the process, since
 * `verifyNow` is synchronous. A payload longer than it is decoded into a buffer of its own.
 */
const given = Buffer.alloc(32);
const scratch = Buffer.alloc(2048);

export interface SocketTokenSigner {
  sign(userId: number, sessionId: number, pinnedVersion?: ApiVersion): Promise<string>;
  verify(token: string): Promise<SocketTokenResult>;
  /** The same verification, synchronous (HMAC-SHA256 over a few hundred bytes). */
  verifyNow(token: string): SocketTokenResult;
}

export function createSocketTokenSigner(secretKeyBase: string, ttlSeconds: number): SocketTokenSigner {
  // A key of its own, derived from the base secret, so no other signature can pass for a socket token.
  const key = createHmac("sha256", secretKeyBase).update("hypercast socket token v1").digest();
  const mac = createMac(key);

  /**
   * A compact JWS with header `{"alg":"HS256"}` (no `crit`), a valid HMAC-SHA256 signature under
   * our key, audience `hypercast:socket`, a numeric `exp` still in the future, a numeric `iat`
   * and `nbf` (when present; `nbf` not in the future) and a positive integer subject — what
   * jose's `jwtVerify(token, key, { algorithms: ["HS256"], audience })` accepts, without clock tolerance.
   */
  function verifyNow(token: string): SocketTokenResult {
    if (!COMPACT_JWS.test(token)) return INVALID;
    const headerEnd = token.indexOf(".");
    const payloadEnd = token.indexOf(".", headerEnd + 1);
    if (token.length - payloadEnd - 1 !== SIGNATURE_CHARS) return INVALID;
    given.write(token.slice(payloadEnd + 1), "base64url");
    if (!timingSafeEqual(given, mac(token, payloadEnd))) return INVALID;
    // The header we sign ourselves needs no decoding; any other is read and checked.
    if (headerEnd !== HEADER.length || !token.startsWith(HEADER)) {
      const head = parseObject(token.slice(0, headerEnd));
      if (head === undefined || head["alg"] !== "HS256" || "crit" in head) return INVALID;
    }
    const claims = parseObject(token.slice(headerEnd + 1, payloadEnd));
    if (claims === undefined) return INVALID;
    const { aud, exp, nbf, iat, sub, sid } = claims;
    if (aud !== AUDIENCE && !(Array.isArray(aud) && aud.includes(AUDIENCE))) return INVALID;
    if (typeof exp !== "number" || (iat !== undefined && typeof iat !== "number")) return INVALID;
    const now = Math.floor(Date.now() / 1000);
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > now)) return INVALID;
    if (exp <= now) return { ok: false, reason: "expired" };
    const userId = typeof sub === "string" && /^\d+$/.test(sub) ? Number(sub) : Number.NaN;
    if (!Number.isSafeInteger(userId) || userId <= 0) return INVALID;
    if (typeof sid !== "number" || !Number.isSafeInteger(sid) || sid <= 0) return INVALID;
    // A pin this code no longer serves (or none) leaves the choice to the caller's default.
    const pinnedVersion = isApiVersion(claims["api_version"]) ? claims["api_version"] : undefined;
    const issuedAt = new Date(typeof iat === "number" ? iat * 1000 : 0);
    return { ok: true, userId, sessionId: sid, expiresAt: new Date(exp * 1000), issuedAt, pinnedVersion };
  }

  return {
    async sign(userId, sessionId, pinnedVersion) {
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        sid: sessionId,
        ...(pinnedVersion === undefined ? {} : { api_version: pinnedVersion }),
        sub: String(userId),
        jti: randomUUID(), // every token is distinct, even two issued in the same second
        aud: AUDIENCE,
        iat: now,
        exp: now + ttlSeconds,
      };
      const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
      return `${input}.${mac(input, input.length).toString("base64url")}`;
    },
    async verify(token) {
      return verifyNow(token);
    },
    verifyNow,
  };
}

/**
 * HMAC-SHA256 (RFC 2104) under `key` of the first `length` characters of `text` (ASCII: a compact
 * JWS's signing input), from two one-shot `hash` calls over buffers kept for the process, with the
 * padded key blocks written once. Equal to `createHmac("sha256", key)`, which the tests hold it to;
 * that creates a native object per call for the garbage collector to finalise, at every connect.
 * The digests travel as "binary" (Latin-1) strings, one byte per character, not as new Buffers. The result is
 * a buffer kept for the process too: read it before the next call.
 */
function createMac(key: Buffer): (text: string, length: number) => Buffer {
  const BLOCK = 64; // SHA-256's block; `key` (32 bytes) is shorter, so it is zero-padded
  const inner = Buffer.alloc(BLOCK + 4096);
  const outer = Buffer.alloc(BLOCK + 32);
  const digest = Buffer.alloc(32);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = (key[i] ?? 0) ^ 0x36;
    outer[i] = (key[i] ?? 0) ^ 0x5c;
  }
  return (text, length) => {
    const input =
      length <= inner.length - BLOCK
        ? inner.subarray(0, BLOCK + inner.write(text.slice(0, length), BLOCK, "latin1"))
        : Buffer.concat([inner.subarray(0, BLOCK), Buffer.from(text.slice(0, length), "latin1")]);
    outer.write(hash("sha256", input, "binary"), BLOCK, "latin1");
    digest.write(hash("sha256", outer, "binary"), 0, "latin1");
    return digest;
  };
}

function parseObject(part: string): Record<string, unknown> | undefined {
  try {
    // base64url: 3 bytes in every 4 characters.
    const json =
      part.length <= (scratch.length / 3) * 4
        ? scratch.toString("utf8", 0, scratch.write(part, "base64url"))
        : Buffer.from(part, "base64url").toString("utf8");
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
