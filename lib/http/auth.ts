/** Bearer-token authentication: `requireUser` admits a request only with a live token. */
import type { Accounts } from "../accounts/index.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i;

export function requireUser(accounts: Accounts): Middleware {
  return async function requireUserMiddleware(ctx, next) {
    const header = ctx.get("Authorization");
    if (header === "") throw challenge("this resource needs a bearer token (Authorization: Bearer <token>)");
    const token = BEARER.exec(header)?.[1];
    const holder = token === undefined ? undefined : await accounts.findSessionByToken(token);
    if (token === undefined || holder === undefined) {
      throw challenge("the bearer token is invalid or has been revoked", "invalid_token");
    }
    ctx.state.user = holder.user;
    ctx.state.sessionId = holder.sessionId;
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
