/**
 * Builds the @koa/router from the route table: each route's chain steps (route-steps.ts:
 * authentication, body parsing and validation, limits, `Idempotency-Key`) composed once into one
 * function in front of its action, and RFC-correct 404 / 405 (with `Allow`) for everything the
 * table does not serve. The same composed routes feed the OpenAPI documents.
 *
 *     const composed = composeRoutes(deps, routes(deps, options), limiter)
 *     app.use(buildRouter(composed))
 */
import Router from "@koa/router";
import { composeSteps, type ChainStep } from "./chain.ts";
import type { HttpContext, HttpState, Middleware } from "./context.ts";
import type { HttpDeps } from "./deps.ts";
import { HttpProblem } from "./problems.ts";
import type { LimiterStore } from "./rate-limit-store.ts";
import { routeSteps } from "./route-steps.ts";
import type { Route } from "./routes.ts";

/** A route with its chain: the steps (what they do and add to its contract) and their code composed with the action. */
export interface ComposedRoute {
  readonly route: Route;
  readonly steps: readonly ChainStep[];
  readonly run: (ctx: HttpContext) => Promise<void>;
}

export function composeRoutes(
  deps: Pick<HttpDeps, "config" | "accounts" | "idempotency" | "logger">,
  table: readonly Route[],
  limiter: LimiterStore,
): ComposedRoute[] {
  const stepsOf = routeSteps(deps, table, limiter);
  return table.map((route) => {
    const steps = stepsOf(route);
    return { route, steps, run: composeSteps(steps, route.action) };
  });
}

export function buildRouter(composed: readonly ComposedRoute[]): Middleware {
  // One router per first path segment (`users`, `rooms`…): @koa/router tests every layer of its
  // stack against every request, so a request is matched against its own resource's routes only.
  // Every method of a path lives in the same router, so 404, 405 and `Allow` come out the same.
  const routers = new Map<string, Router<HttpState>>();
  for (const { route, run } of composed) {
    const segment = routeSegment(route.path);
    let router = routers.get(segment);
    if (router === undefined) routers.set(segment, (router = new Router<HttpState>()));
    router.register(route.path, [route.method], [(ctx) => run(ctx)], { name: route.name });
  }
  const groups = new Map(
    [...routers].map(([segment, router]) => [
      segment,
      { dispatch: router.routes() as Middleware, allowed: router.allowedMethods() as Middleware },
    ]),
  );

  return async function routeRequest(ctx, next) {
    const group = groups.get(firstSegment(ctx.path));
    if (group !== undefined) await group.allowed(ctx, () => group.dispatch(ctx, next));
    const matched = (ctx as { matched?: unknown[] }).matched ?? [];
    if (matched.length === 0 || (ctx.status === 404 && ctx.body === undefined)) {
      throw HttpProblem.of("not_found", `no resource at ${ctx.originalUrl.split("?")[0]}`);
    }
    if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) {
      const allow = ctx.response.get("Allow");
      throw HttpProblem.of(
        "method_not_allowed",
        `${ctx.method} is not allowed here; allowed: ${allow}`,
        {},
        { Allow: allow },
      );
    }
  };
}

/** A path's first segment, lower-cased as @koa/router matches: `/Users/1` → `users`, `/` → ``. */
function firstSegment(path: string): string {
  const end = path.indexOf("/", 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

/** A route's first segment; one that is a parameter would match any request's, and is refused. */
function routeSegment(path: string): string {
  const segment = firstSegment(path);
  if (segment.startsWith(":")) throw new Error(`route ${path}: its first segment must be literal`);
  return segment;
}
