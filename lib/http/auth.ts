/**
 * Bearer-token authentication: `identifyCaller` looks the token up once per request (the rate
 * limit needs the user before anything else runs); `requireUser` admits a request only with a
 * live token, reusing that lookup.
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
  const user = token === undefined ? undefined : await accounts.findUserByToken(token);
  if (token !== undefined && user !== undefined) {
    ctx.state.user = user;
    ctx.state.token = token;
  }
  ctx.state.caller = header === "" ? "none" : user === undefined ? "invalid" : "user";
  return ctx.state.caller;
}

export function requireUser(accounts: Accounts): Middleware {
  return async function requireUserMiddleware(ctx, next) {
    const caller = await identifyCaller(accounts, ctx);
    if (caller === "none") throw challenge("this resource needs a bearer token (Authorization: Bearer <token>)");
    if (caller === "invalid") throw challenge("the bearer token is invalid or has been revoked", "invalid_token");
    await next();
  };
}

/** The authenticated user; only call behind `requireUser`. */
export function currentUser(ctx: HttpContext) {
  const user = ctx.state.user;
  if (user === undefined) throw new Error("currentUser() called on a route without requireUser");
  return user;
}

function challenge(detail: string, error?: string): HttpProblem {
  const params = error === undefined ? 'realm="hypercast"' : `realm="hypercast", error="${error}"`;
  return HttpProblem.of("unauthorized", detail, {}, { "WWW-Authenticate": `Bearer ${params}` });
}
