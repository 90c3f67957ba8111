/**
 * `GET /openapi/v1.json`, `GET /openapi/v2.json`: the OpenAPI document of each version, built
 * from the composed routes once per state of the version (offered, or past its sunset), so a
 * document turns into "this version is gone" at the sunset without a restart. Outside version
 * negotiation: any `Accept` gets the document.
 *
 *     app.use(serveOpenApi(composeRoutes(deps, routes(deps, options), limiter), { versions: config.versions, clock }))
 */
import type { Clock } from "../clock.ts";
import type { VersionPolicy } from "../version-policy.ts";
import { API_VERSIONS, type ApiVersion } from "../versions.ts";
import { sendStatic, staticRepresentation, type StaticRepresentation } from "./conditional.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { buildOpenApi } from "./openapi.ts";
import type { ComposedRoute } from "./router.ts";

export interface ServeOpenApiOptions {
  versions: VersionPolicy;
  clock: Clock;
}

export function serveOpenApi(table: readonly ComposedRoute[], options: ServeOpenApiOptions): Middleware {
  const { versions, clock } = options;
  const paths = new Map<string, ApiVersion>(API_VERSIONS.map((v) => [`/openapi/v${v}.json`, v]));
  const documents = new Map<string, StaticRepresentation>();
  function document(version: ApiVersion, sunsetReached: boolean): StaticRepresentation {
    const key = `${version}:${sunsetReached}`;
    let doc = documents.get(key);
    if (doc === undefined) {
      doc = staticRepresentation(
        buildOpenApi(table, { version, versions, sunsetReached }),
        "application/json; charset=utf-8",
      );
      documents.set(key, doc);
    }
    return doc;
  }
  // Built at boot, so a broken schema stops the boot rather than the first request.
  for (const version of API_VERSIONS) document(version, versions.withdrawal(version, clock.now())?.reason === "sunset");
  return function serveOpenApiMiddleware(ctx, next) {
    const version = paths.get(ctx.path);
    if (version === undefined) return next();
    return Promise.resolve(answer(ctx, version));
  };
  function answer(ctx: HttpContext, version: ApiVersion): void {
    ctx.state.route = ctx.path;
    sendStatic(ctx, document(version, versions.withdrawal(version, clock.now())?.reason === "sunset"));
  }
}
