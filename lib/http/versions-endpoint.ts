/**
 * `GET /versions`: the versions served, which is current and which deprecated (with the
 * deprecation and sunset dates), their media types, URL prefixes and OpenAPI documents — for
 * gateways that route by media type and for clients planning a migration. Outside version
 * negotiation: any `Accept` gets it, as `application/json`.
 *
 *     app.use(serveVersions({ deprecatedAt, sunset: config.v1Sunset }))
 *     // GET /versions → {"current_version":2,"default_version":2,"versions":[{"version":2,"status":"current",…},…]}
 */
import { API_VERSIONS, CURRENT_VERSION, DEFAULT_VERSION, DEPRECATED_VERSIONS, mediaType, parameterMediaType } from "../versions.ts";
import { sendStatic, staticRepresentation } from "./conditional.ts";
import type { Middleware } from "./context.ts";

export interface ServeVersionsOptions {
  /** When the deprecated versions were deprecated, and when they stop being served. */
  deprecatedAt: Date;
  sunset: Date;
}

/** The body of `GET /versions` (pure). */
export function versionsDocument(options: ServeVersionsOptions): Record<string, unknown> {
  return {
    current_version: CURRENT_VERSION,
    default_version: DEFAULT_VERSION,
    versions: API_VERSIONS.map((version) => ({
      version,
      status: DEPRECATED_VERSIONS.has(version) ? "deprecated" : "current",
      ...(DEPRECATED_VERSIONS.has(version)
        ? { deprecated_at: options.deprecatedAt.toISOString(), sunset: options.sunset.toISOString(), successor_version: CURRENT_VERSION }
        : {}),
      media_types: [mediaType(version), parameterMediaType(version)],
      url_prefix: `/v${version}`,
      openapi: `/openapi/v${version}.json`,
    })),
  };
}

export function serveVersions(options: ServeVersionsOptions): Middleware {
  const versions = staticRepresentation(versionsDocument(options), "application/json; charset=utf-8");
  return async function serveVersionsMiddleware(ctx, next) {
    if (ctx.path !== "/versions") return next();
    ctx.state.route = "/versions";
    sendStatic(ctx, versions);
  };
}
