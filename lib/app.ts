/**
 * The HTTP application: the order of middleware, nothing else.
 *
 *     const app = buildApp(deps, { socketUrl: () => "ws://127.0.0.1:4001/socket" })
 *     app.listen(4000)
 */
import Koa from "koa";
import type { Deps } from "./deps.ts";
import type { HttpState } from "./http/context.ts";
import { logRequests } from "./http/log-requests.ts";
import { negotiateVersion, stripVersionPrefix } from "./http/negotiate.ts";
import { buildRouter } from "./http/router.ts";
import type { RouteOptions } from "./http/routes.ts";
import { translateErrors } from "./http/translate-errors.ts";

/** When version 1 was deprecated (the `Deprecation` header). */
const V1_DEPRECATED_AT = new Date("2026-01-01T00:00:00Z");

export function buildApp(deps: Deps, options: RouteOptions): Koa<HttpState> {
  const app = new Koa<HttpState>();
  app.silent = true; // errors are answered and logged by translateErrors
  app.use(logRequests(deps.logger));
  app.use(translateErrors(deps.logger));
  app.use(stripVersionPrefix());
  app.use(negotiateVersion({ deprecatedAt: V1_DEPRECATED_AT, sunset: deps.config.v1Sunset }));
  app.use(buildRouter(deps, options));
  return app;
}
