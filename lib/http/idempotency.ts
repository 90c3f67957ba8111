/**
 * `Idempotency-Key` on POST, with Stripe's semantics. The first request with a key runs and its
 * result (status, `Content-Type`, `Location`, body) is kept 24 h; a retry with the same key and
 * the same request gets that result again with `Idempotent-Replayed: true`. The same key with a
 * different request → 422; while the first is still running → 409. Only 2xx and 4xx results are
 * kept: after a 5xx the key is released and a retry runs afresh.
 *
 * Keys are scoped per user (`user:<id>`); on public routes (sign-up) they share one `anonymous`
 * scope, where the request's fingerprint is what protects a result: a replay needs the key and
 * the very same request (body, password included). Use random keys (UUIDs). The fingerprint is
 * an HMAC keyed by a secret derived from SECRET_KEY_BASE: a stored fingerprint cannot be used to
 * test guesses of the password it covers without that secret.
 *
 * Sits in a route's chain after authentication and body validation, so a request that fails
 * those is answered without touching its key (as Stripe does), and the key's scope is known.
 *
 *     chain.push(honorIdempotencyKeys(deps.idempotency, deps.logger, { secretKeyBase }))
 */
import { createHmac, hkdfSync } from "node:crypto";
import type { Logger } from "pino";
import type { Idempotency, IdempotentRequest } from "../idempotency/index.ts";
import { type HttpContext, type Middleware, versionOf } from "./context.ts";
import { HttpProblem } from "./problems.ts";
import { translateErrors } from "./translate-errors.ts";

/** Visible ASCII, 1–255 characters (Stripe allows 255). */
const VALID_KEY = /^[\x21-\x7e]{1,255}$/;
/** The headers a replay repeats; the rest (version, rate limit, request id…) are the retry's own. */
const KEPT_HEADERS = ["content-type", "location"] as const;

export const IDEMPOTENCY_PROBLEMS = {
  reused: { type: "/problems/idempotency-key-reused", title: "Idempotency-Key Reused", status: 422 },
  inFlight: { type: "/problems/idempotency-key-in-use", title: "Idempotency-Key In Use", status: 409 },
} as const;

export interface IdempotencyKeyOptions {
  /** The server secret the fingerprint key is derived from. */
  secretKeyBase: string;
}

export function honorIdempotencyKeys(
  idempotency: Idempotency,
  logger: Logger,
  options: IdempotencyKeyOptions,
): Middleware {
  // The action's failures are rendered here, inside, so a 4xx problem can be kept like any result.
  const translate = translateErrors(logger);
  // A key of its own (HKDF), so this use of the secret can never be confused with another.
  const fingerprintKey = Buffer.from(
    hkdfSync("sha256", options.secretKeyBase, "", "hypercast idempotency fingerprint", 32),
  );
  return async function honorIdempotencyKeysMiddleware(ctx, next) {
    const key = ctx.get("Idempotency-Key");
    if (key === "") return next();
    if (!VALID_KEY.test(key)) {
      throw HttpProblem.of(
        "bad_request",
        "Idempotency-Key must be 1 to 255 visible ASCII characters; a random UUID is a good choice",
      );
    }
    const request: IdempotentRequest = { scope: scopeOf(ctx), key, fingerprint: fingerprint(fingerprintKey, ctx) };
    const claim = await idempotency.claim(request);
    if (claim.kind === "mismatch") {
      throw new HttpProblem({
        ...IDEMPOTENCY_PROBLEMS.reused,
        detail:
          "this Idempotency-Key was first used with a different request (method, path, version or body); use a new key for a new request",
      });
    }
    if (claim.kind === "in_flight") {
      throw new HttpProblem(
        {
          ...IDEMPOTENCY_PROBLEMS.inFlight,
          detail: "the first request with this Idempotency-Key is still being processed; retry shortly",
        },
        { "Retry-After": "1" },
      );
    }
    if (claim.kind === "replay") {
      const { status, headers, body } = claim.result;
      ctx.status = status;
      ctx.set(headers);
      ctx.set("Idempotent-Replayed", "true");
      ctx.body = body;
      return;
    }
    await translate(ctx, next);
    try {
      if (ctx.status >= 500) await idempotency.release(request);
      else
        await idempotency.complete(request, {
          status: ctx.status,
          headers: keptHeaders(ctx),
          body: serialized(ctx.body),
        });
    } catch (error) {
      // The work is done and answered; failing to keep its result must not turn it into an error.
      // The claim then lapses after its lock timeout.
      logger.warn({ err: { message: (error as Error).message }, path: ctx.path }, "idempotency result not stored");
    }
  };
}

function scopeOf(ctx: HttpContext): string {
  return ctx.state.user === undefined ? "anonymous" : `user:${ctx.state.user.id}`;
}

/** What the request asked for: method, URL (prefix and query included), version and body (keys sorted). */
function fingerprint(key: Buffer, ctx: HttpContext): string {
  // The body as acceptBody left it (none on a route without a body schema).
  const parts = [ctx.method, ctx.originalUrl, versionOf(ctx), canonical(ctx.state.body)];
  return createHmac("sha256", key).update(JSON.stringify(parts)).digest("base64url");
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

function keptHeaders(ctx: HttpContext): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = ctx.response.get(name);
    if (value !== undefined && value !== "") kept[name] = String(value);
  }
  return kept;
}

function serialized(body: unknown): string | null {
  if (body === null || body === undefined) return null;
  return typeof body === "string" ? body : JSON.stringify(body);
}
