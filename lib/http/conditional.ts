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
 *     app.use(tagRepresentations())
 *     // GET /rooms/3                          → 200, ETag: "Yh0…"
 *     // GET /rooms/3, If-None-Match: "Yh0…"    → 304
 */
import { hash } from "node:crypto";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

/** Turns a fresh GET/HEAD (matching `If-None-Match`) into a 304. Goes outside `tagRepresentations`. */
export function answerConditionalGets(): Middleware {
  return async function answerConditionalGetsMiddleware(ctx, next) {
    await next();
    if (notModified(ctx)) {
      ctx.status = 304;
      ctx.body = null;
    }
  };
}

function notModified(ctx: HttpContext): boolean {
  if ((ctx.method !== "GET" && ctx.method !== "HEAD") || ctx.status < 200 || ctx.status >= 300) return false;
  const condition = ctx.get("If-None-Match");
  const tag = ctx.response.get("ETag");
  return condition !== "" && tag !== undefined && noneMatchFails(condition, String(tag));
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

/** Adds a strong ETag to 2xx GET/HEAD answers that carry a JSON body and no tag yet. */
export function tagRepresentations(): Middleware {
  return async function tagRepresentationsMiddleware(ctx, next) {
    await next();
    if ((ctx.method !== "GET" && ctx.method !== "HEAD") || ctx.status < 200 || ctx.status >= 300) return;
    const body: unknown = ctx.body;
    if (body === null || typeof body !== "object" || Buffer.isBuffer(body) || ctx.response.get("ETag") !== undefined) return;
    // Serialise once, here: the tag covers exactly the bytes sent, and Koa keeps our Content-Type.
    const json = JSON.stringify(body);
    ctx.body = json;
    ctx.set("ETag", representationTag(String(ctx.response.get("Content-Type") ?? ""), json));
  };
}

/** A strong entity tag of a body in a media type: a SHA-256 of both (collisions are not a concern). */
export function representationTag(contentType: string, body: string): string {
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
    throw HttpProblem.of("method_not_allowed", `${ctx.method} is not allowed here; allowed: GET, HEAD`, {}, { Allow: "GET, HEAD" });
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
