/**
 * Bearer-token authentication: `identifyCaller` looks the token up once per request (the rate
 * limit needs the user before anything else runs, and version negotiation needs the caller's
 * pinned version); `requireUser` admits a request only with a live token, reading that lookup.
 */
import type { Accounts } from "../accounts/index.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

/** `Authorization: Bearer <token>` (RFC 6750's b64token syntax). */
export const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i;

/** What the request's credentials turned out to be. */
export type Caller = "none" | "invalid" | "user";

/**
 * Identifies the request's caller once: `user` (ctx.state.user and .token set), `invalid` (a
 * header that names no live token) or `none` (no Authorization header). Later calls reuse the answer.
 *
 *     if ((await identifyCaller(accounts, ctx)) === "user") countAgainst(ctx.state.user)
 */
export async function identifyCaller(accounts: Accounts, ctx: HttpContext): Promise<Caller> {
  if (ctx.state.caller !== undefined) return ctx.state.caller;
  const header = ctx.get("Authorization");
  const token = header === "" ? undefined : BEARER.exec(header)?.[1];
  const holder = token === undefined ? undefined : await accounts.findSessionByToken(token);
  const user = holder?.user;
  if (token !== undefined && holder !== undefined) {
    ctx.state.user = holder.user;
    ctx.state.sessionId = holder.sessionId;
    ctx.state.token = token;
  }
  ctx.state.caller = header === "" ? "none" : user === undefined ? "invalid" : "user";
  return ctx.state.caller;
}

/**
 * `identifyCaller` as middleware, in front of version negotiation (the caller's pinned version is
 * one of its inputs): an unknown token is no error here, `requireUser` answers 401 per route. With
 * rate limits on, `limitRequests` has already looked the caller up and this reuses its answer.
 *
 *     app.use(lookUpCaller(deps.accounts)) // before negotiateVersion
 */
export function lookUpCaller(accounts: Accounts): Middleware {
  return function lookUpCallerMiddleware(ctx, next) {
    // Already known (limitRequests looked it up): pass through without a frame of its own.
    if (ctx.state.caller !== undefined) return next();
    return identifyCaller(accounts, ctx).then(() => next());
  };
}

/**
 * Admits a request only with a live token: a synchronous check of what `lookUpCaller` (app.ts,
 * in front of every route) found, so it costs no lookup, promise or frame of its own.
 *
 *     const steps = [{ name: "requireUser", runs: "router", check: requireUser, contract: … }]
 */
export function requireUser(ctx: HttpContext): void {
  const caller = ctx.state.caller;
  if (caller === "user") return;
  if (caller === undefined)
    throw new Error("requireUser() runs behind lookUpCaller(), which looks the bearer token up (app.ts)");
  if (caller === "none") throw challenge("this resource needs a bearer token (Authorization: Bearer <token>)");
  throw challenge("the bearer token is invalid or has been revoked", "invalid_token");
}

/** The authenticated user; only call behind `requireUser`. */
export function currentUser(ctx: HttpContext) {
  const user = ctx.state.user;
  if (user === undefined) throw new Error("currentUser() called on a route without requireUser");
  return user;
}

/** The id of the session the request authenticated with; only call behind `requireUser`. */
export function currentSessionId(ctx: HttpContext): number {
  const id = ctx.state.sessionId;
  if (id === undefined) throw new Error("currentSessionId() called on a route without requireUser");
  return id;
}

function challenge(detail: string, error?: string): HttpProblem {
  const params = error === undefined ? 'realm="hypercast"' : `realm="hypercast", error="${error}"`;
  return HttpProblem.of("unauthorized", detail, {}, { "WWW-Authenticate": `Bearer ${params}` });
}
