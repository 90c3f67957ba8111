/**
 * CORS for browser clients on other origins, from the configured allow-list (CORS_ORIGINS), with
 * @koa/cors. An empty list switches CORS off (no `Access-Control-*` headers at all); `*` allows
 * any origin. Requests from origins not on the list get no CORS headers, so the browser blocks
 * them. Preflights (OPTIONS with `Access-Control-Request-Method`) are answered here, 204, before
 * version negotiation or routing, so every route preflights the same way.
 *
 * Credentials (cookies) are never allowed: the API authenticates with bearer tokens, which a
 * browser only sends when the calling script adds them.
 *
 *     app.use(allowCors({ origins: ["https://app.example.com"] }))
 */
import koaCors from "@koa/cors";
import type { Middleware } from "./context.ts";

export interface CorsOptions {
  /** Allowed origins, exactly as browsers send them (`https://app.example.com`); `["*"]` = any. */
  origins: readonly string[];
  /** How long a browser may cache a preflight answer, in seconds (default 600). */
  maxAgeSeconds?: number;
}

/** Response headers a browser script may read. */
export const EXPOSED_HEADERS = [
  "Location",
  "Link",
  "Deprecation",
  "Sunset",
  "X-Request-Id",
  "ETag",
  "Retry-After",
  "Idempotent-Replayed",
  // Expose-Headers takes names, not patterns: both RateLimit header drafts, spelled out.
  "RateLimit",
  "RateLimit-Policy",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "WWW-Authenticate",
  "Allow",
] as const;

/** Request headers a browser script may send. */
export const ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "Accept",
  "Idempotency-Key",
  "If-None-Match",
  "X-Request-Id",
] as const;

export const ALLOWED_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"] as const;

export function allowCors(options: CorsOptions): Middleware {
  if (options.origins.length === 0) {
    return function corsOff(_ctx, next) {
      return next();
    };
  }
  const anyOrigin = options.origins.includes("*");
  const allowed = new Set(options.origins);
  const cors = koaCors({
    // Echo the request's origin when it is allowed (one origin per response, as the spec wants);
    // an empty answer makes @koa/cors add nothing. @koa/cors adds `Vary: Origin` either way.
    origin: (ctx) => {
      const origin = ctx.get("Origin");
      if (anyOrigin) return "*";
      return allowed.has(origin) ? origin : "";
    },
    allowMethods: [...ALLOWED_METHODS],
    allowHeaders: [...ALLOWED_HEADERS],
    exposeHeaders: [...EXPOSED_HEADERS],
    maxAge: options.maxAgeSeconds ?? 600,
    credentials: false,
  });
  return function allowCorsMiddleware(ctx, next) {
    return cors(ctx as never, next);
  };
}
