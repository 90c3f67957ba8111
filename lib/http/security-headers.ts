/**
 * The security headers that suit a JSON API, on every response (errors and preflights too).
 * Our responses are data, never documents to render, embed or run, so everything a browser
 * could do with them beyond `fetch` is switched off:
 *
 * - `X-Content-Type-Options: nosniff`: JSON is never sniffed into HTML or script.
 * - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`: a response opened as a
 *   page loads nothing and cannot be framed.
 * - `X-Frame-Options: DENY`: the same for browsers that predate `frame-ancestors`.
 * - `Referrer-Policy: no-referrer`: links in our JSON never leak our URLs (ids, cursors) onward.
 * - `Cross-Origin-Resource-Policy: same-origin`: other sites cannot pull responses in through
 *   `<script>`/`<img>` (no-cors loads, the Spectre vector). CORP does not apply to CORS
 *   requests, so browser clients allowed by CORS_ORIGINS keep working.
 * - `Strict-Transport-Security` only in production, where a TLS-terminating proxy fronts us; in
 *   development it would pin `localhost` to HTTPS in the developer's browser.
 *
 * Koa sends no `X-Powered-By`; nothing here adds one.
 *
 *     app.use(stampRequests(setSecurityHeaders({ hsts: config.nodeEnv === "production" })))
 */
import type { RequestStamp } from "./stamp.ts";

export interface SecurityHeadersOptions {
  /** Send `Strict-Transport-Security` (production only). */
  hsts: boolean;
}

const BASE_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** One year, the value HSTS preload lists ask for. */
const HSTS = "max-age=31536000; includeSubDomains";

export function setSecurityHeaders(options: SecurityHeadersOptions): RequestStamp {
  // Computed once: the same headers on every response, set straight on the node response (the
  // values are constants, so Koa's per-call coercion has nothing to do).
  const headers = Object.entries(options.hsts ? { ...BASE_HEADERS, "Strict-Transport-Security": HSTS } : BASE_HEADERS);
  return function setSecurityHeaders(ctx) {
    const res = ctx.res;
    for (const [name, value] of headers) res.setHeader(name, value);
  };
}
