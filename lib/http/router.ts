/**
 * Builds the @koa/router from the route table: authentication, body parsing and validation
 * in front of each action as the table asks, and RFC-correct 404 / 405 (with `Allow`) for
 * everything the table does not serve.
 */
import Router from "@koa/router";
import { compileRequestSchemas } from "../schemas.ts";
import { requireUser } from "./auth.ts";
import { bodyParser } from "./body.ts";
import type { HttpState, Middleware } from "./context.ts";
import type { HttpDeps } from "./deps.ts";
import { honorIdempotencyKeys } from "./idempotency.ts";
import { HttpProblem } from "./problems.ts";
import { limitLoginAttempts, limitSignUps } from "./rate-limit.ts";
import type { LimiterStore } from "./rate-limit-store.ts";
import type { Route } from "./routes.ts";

export function buildRouter(deps: HttpDeps, table: readonly Route[], limiter: LimiterStore): Middleware {
  const acceptBody = bodyParser({
    schemas: compileRequestSchemas(table.flatMap((r) => (r.body === undefined ? [] : [r.body]))),
    limitBytes: deps.config.bodyLimitBytes,
  });
  const authenticate = requireUser(deps.accounts);
  const { config } = deps;
  const window = config.loginWindowSeconds;
  const guardLogin = limitLoginAttempts(limiter, {
    perEmail: { name: "login-email", points: config.loginFailuresPerEmail, windowSeconds: window },
    perAddress: { name: "login-address", points: config.loginFailuresPerAddress, windowSeconds: window },
  });
  const guardSignUp = limitSignUps(limiter, { name: "signup", points: config.signUpsPerAddress, windowSeconds: config.signUpWindowSeconds });
  const idempotent = honorIdempotencyKeys(deps.idempotency, deps.logger, { secretKeyBase: config.secretKeyBase });
  const router = new Router<HttpState>();
  for (const route of table) {
    const chain: Middleware[] = [];
    if (route.auth) chain.push(authenticate);
    if (route.body !== undefined) chain.push(acceptBody(route.body));
    if (route.login === true && config.rateLimits) chain.push(guardLogin);
    if (route.signUp === true && config.rateLimits) chain.push(guardSignUp);
    if (route.method === "post" && route.credentials !== true) chain.push(idempotent);
    router.register(route.path, [route.method], [...chain, (ctx) => route.action(ctx)], { name: route.name });
  }
  const dispatch = router.routes();
  const allowed = router.allowedMethods();

  return async function routeRequest(ctx, next) {
    await allowed(ctx as never, () => dispatch(ctx as never, next));
    const matched = (ctx as { matched?: unknown[] }).matched ?? [];
    if (matched.length === 0 || (ctx.status === 404 && ctx.body === undefined)) {
      throw HttpProblem.of("not_found", `no resource at ${ctx.originalUrl.split("?")[0]}`);
    }
    if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) {
      const allow = ctx.response.get("Allow");
      throw HttpProblem.of("method_not_allowed", `${ctx.method} is not allowed here; allowed: ${allow}`, {}, { Allow: allow });
    }
  };
}
