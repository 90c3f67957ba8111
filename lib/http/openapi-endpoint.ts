/**
 * `GET /openapi/v1.json`, `GET /openapi/v2.json`: the OpenAPI document of each version, built
 * once at boot from the route table. Outside version negotiation: any `Accept` gets the document.
 *
 *     app.use(serveOpenApi(routes(deps, options), { deprecatedAt, sunset }))
 */
import { API_VERSIONS } from "../versions.ts";
import { sendStatic, staticRepresentation, type StaticRepresentation } from "./conditional.ts";
import type { Middleware } from "./context.ts";
import { buildOpenApi } from "./openapi.ts";
import type { Route } from "./routes.ts";

export interface ServeOpenApiOptions {
  deprecatedAt: Date;
  sunset: Date;
}

export function serveOpenApi(table: readonly Route[], options: ServeOpenApiOptions): Middleware {
  const documents = new Map<string, StaticRepresentation>(
    API_VERSIONS.map((version) => [
      `/openapi/v${version}.json`,
      staticRepresentation(buildOpenApi(table, { ...options, version }), "application/json; charset=utf-8"),
    ]),
  );
  return async function serveOpenApiMiddleware(ctx, next) {
    const document = documents.get(ctx.path);
    if (document === undefined) return next();
    ctx.state.route = ctx.path;
    sendStatic(ctx, document);
  };
}
