/**
 * Conditional requests: a strong `ETag` on every successful GET/HEAD representation, and
 * `If-None-Match` answered with 304 (no body; `ETag`, `Vary: Accept` and the version headers
 * kept). The tag hashes the `Content-Type` (which names the version) with the body, so the same
 * resource in v1 and v2 never shares a tag even where the two bodies happen to be identical
 * (koa-etag hashes the body alone).
 *
 * `If-None-Match` is evaluated here as RFC 9110 §13.1.2 says (weak comparison, `*`), not through
 * Koa's `ctx.fresh` (the `fresh` package, which koa-conditional-get uses): `fresh` ignores the
 * condition whenever the request says `Cache-Control: no-cache`, and fetch() adds exactly that
 * to every request with a manual `If-None-Match`, so browser and Node clients would never see a 304.
 *
 *     app.use(answerConditionalGets())
 *     // GET /rooms/3                          → 200, ETag: "Yh0…"
 *     // GET /rooms/3, If-None-Match: "Yh0…"    → 304
 */
import { hash } from "node:crypto";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

/**
 * For GET and HEAD: tags a 2xx JSON answer (serialised here, once, into the bytes sent) and
 * turns it into a 304 when `If-None-Match` matches. Other methods pass straight through.
 */
export function answerConditionalGets(): Middleware {
  return function answerConditionalGetsMiddleware(ctx, next) {
    if (ctx.method !== "GET" && ctx.method !== "HEAD") return next();
    return next().then(() => {
      if (ctx.status < 200 || ctx.status >= 300) return;
      tag(ctx);
      if (notModified(ctx)) {
        ctx.status = 304;
        ctx.body = null;
      }
    });
  };
}

/** Adds a strong ETag to an answer that carries a JSON body and no tag yet. */
function tag(ctx: HttpContext): void {
  const body: unknown = ctx.body;
  if (body === null || typeof body !== "object" || Buffer.isBuffer(body) || ctx.res.hasHeader("ETag")) return;
  // Serialised once, here: the tag covers exactly the bytes sent, Koa sends this buffer as it is
  // (no second encoding to count its length) and keeps our Content-Type.
  const json = JSON.stringify(body);
  ctx.body = Buffer.from(json);
  ctx.res.setHeader("ETag", representationTag(String(ctx.res.getHeader("Content-Type") ?? ""), json));
}

function notModified(ctx: HttpContext): boolean {
  const condition = ctx.req.headers["if-none-match"];
  if (condition === undefined || condition === "") return false;
  const tag = ctx.response.get("ETag");
  return tag !== undefined && tag !== "" && noneMatchFails(condition, String(tag));
}

/**
 * True when `If-None-Match` lists the representation's tag (weak comparison: `W/` is ignored on
 * both sides) or is `*` — the condition is false and a GET gets 304.
 *
 *     noneMatchFails('"a", W/"b"', '"b"') // → true
 */
export function noneMatchFails(condition: string, tag: string): boolean {
  if (condition.trim() === "*") return true;
  const opaque = tag.replace(/^W\//, "");
  return (condition.match(/(?:W\/)?"[^"]*"/g) ?? []).some((listed) => listed.replace(/^W\//, "") === opaque);
}

/** A strong entity tag of a body in a media type: a SHA-256 of both (collisions are not a concern). */
export function representationTag(contentType: string, body: string): string {
  // One-shot: crypto.hash costs no Hash object per response (strings are hashed as UTF-8, the bytes sent).
  return `"${hash("sha256", `${contentType}\n${body}`, "base64url")}"`;
}

/** A body computed once at boot (an OpenAPI document, the versions list), with its tag. */
export interface StaticRepresentation {
  readonly body: string;
  readonly type: string;
  readonly etag: string;
}

export function staticRepresentation(value: unknown, type: string): StaticRepresentation {
  const body = JSON.stringify(value);
  return { body, type, etag: representationTag(type, body) };
}

/** Answers GET/HEAD with a static representation (304 when `If-None-Match` matches); other methods → 405. */
export function sendStatic(ctx: HttpContext, representation: StaticRepresentation): void {
  if (ctx.method !== "GET" && ctx.method !== "HEAD") {
    throw HttpProblem.of(
      "method_not_allowed",
      `${ctx.method} is not allowed here; allowed: GET, HEAD`,
      {},
      { Allow: "GET, HEAD" },
    );
  }
  ctx.status = 200;
  ctx.type = representation.type;
  ctx.set("ETag", representation.etag);
  const condition = ctx.get("If-None-Match");
  if (condition !== "" && noneMatchFails(condition, representation.etag)) {
    ctx.status = 304;
    ctx.body = null;
    return;
  }
  ctx.body = representation.body;
}
