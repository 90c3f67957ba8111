/** Bearer-token authentication: `requireUser` admits a request only with a live token. */
import type { Accounts } from "../accounts/index.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

/** `Authorization: Bearer <token>` (RFC 6750's b64token syntax). */
export const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i;

export function requireUser(accounts: Accounts): Middleware {
  return async function requireUserMiddleware(ctx, next) {
    // Already identified by limitRequests (the rate limit needs the user before anything else).
    if (ctx.state.user !== undefined && ctx.state.token !== undefined) return next();
    const header = ctx.get("Authorization");
    if (header === "") throw challenge("this resource needs a bearer token (Authorization: Bearer <token>)");
    const token = BEARER.exec(header)?.[1];
    const user = token === undefined ? undefined : await accounts.findUserByToken(token);
    if (token === undefined || user === undefined) {
      throw challenge("the bearer token is invalid or has been revoked", "invalid_token");
    }
    ctx.state.user = user;
    ctx.state.token = token;
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
