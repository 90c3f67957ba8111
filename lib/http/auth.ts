/**
 * Bearer-token authentication. `identifyCaller` looks the token up once per request, early,
 * because the caller's pinned version is an input of version negotiation; an unknown token is
 * no error there. `requireUser`, per route, admits a request only with a live token (401).
 */
import type { Accounts } from "../accounts/index.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

const BEARER = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i;

/**
 * Sets `ctx.state.user` and `token` when the request carries a live bearer token; leaves them
 * unset otherwise (public routes serve such requests anonymously, `requireUser` answers 401).
 *
 *     app.use(identifyCaller(deps.accounts)) // before negotiateVersion
 */
export function identifyCaller(accounts: Accounts): Middleware {
  return async function identifyCallerMiddleware(ctx, next) {
    const token = BEARER.exec(ctx.get("Authorization"))?.[1];
    const user = token === undefined ? undefined : await accounts.findUserByToken(token);
    if (token !== undefined && user !== undefined) {
      ctx.state.user = user;
      ctx.state.token = token;
    }
    ctx.state.identified = true;
    await next();
  };
}

export function requireUser(accounts: Accounts): Middleware {
  return async function requireUserMiddleware(ctx, next) {
    const header = ctx.get("Authorization");
    if (header === "") throw challenge("this resource needs a bearer token (Authorization: Bearer <token>)");
    const token = BEARER.exec(header)?.[1];
    // Looked up already by identifyCaller when it runs in front; else here.
    const user = token === undefined ? undefined : ctx.state.identified === true ? ctx.state.user : await accounts.findUserByToken(token);
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
