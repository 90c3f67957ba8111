/**
 * `GET /versions`: the versions, which is current and which deprecated (with the deprecation
 * date, sunset date and brownout windows), which are withdrawn right now, what changed in each
 * (the changelog declared in lib/versions.ts), their media types, URL prefixes and OpenAPI
 * documents — for gateways that route by media type and for clients planning a migration.
 * Outside version negotiation: any `Accept` gets it, as `application/json`.
 *
 *     app.use(serveVersions({ versions: config.versions, clock }))
 *     // GET /versions → {"current_version":2,"default_version":2,"versions":[{"version":2,"status":"current",…},…]}
 */
import type { Clock } from "../clock.ts";
import type { VersionPolicy, Withdrawal } from "../version-policy.ts";
import { CURRENT_VERSION, DEFAULT_VERSION, mediaType, parameterMediaType, type ApiVersion } from "../versions.ts";
import { sendStatic, staticRepresentation, type StaticRepresentation } from "./conditional.ts";
import type { HttpContext, Middleware } from "./context.ts";

export interface ServeVersionsOptions {
  /** Each version's status, deprecation, sunset, brownouts and changes (`config.versions`). */
  versions: VersionPolicy;
  clock: Clock;
}

/**
 * The body of `GET /versions` (pure) with these versions withdrawn. `status` is `current`,
 * `deprecated`, `browned_out` (inside a brownout window) or `sunset`.
 */
export function versionsDocument(
  versions: VersionPolicy,
  withdrawn: ReadonlyMap<ApiVersion, Withdrawal> = new Map(),
): Record<string, unknown> {
  return {
    current_version: CURRENT_VERSION,
    default_version: DEFAULT_VERSION,
    versions: versions.all.map(({ version, status, deprecatedAt, sunset, brownouts, changes }) => {
      const why = withdrawn.get(version);
      return {
        version,
        status: why?.reason === "sunset" ? "sunset" : why?.reason === "brownout" ? "browned_out" : status,
        ...(deprecatedAt === undefined
          ? {}
          : {
              deprecated_at: deprecatedAt.toISOString(),
              ...(sunset === undefined ? {} : { sunset: sunset.toISOString() }),
              brownouts: brownouts.map((w) => ({ start: w.start.toISOString(), end: w.end.toISOString() })),
              successor_version: CURRENT_VERSION,
            }),
        changes: changes.map((c) => ({ resource: c.resource, description: c.description })),
        media_types: [mediaType(version), parameterMediaType(version)],
        url_prefix: `/v${version}`,
        openapi: `/openapi/v${version}.json`,
      };
    }),
  };
}

export function serveVersions(options: ServeVersionsOptions): Middleware {
  // The body changes only when a version is withdrawn or comes back: one per such state, built once.
  const bodies = new Map<string, StaticRepresentation>();
  return function serveVersionsMiddleware(ctx, next) {
    if (ctx.path !== "/versions") return next();
    return Promise.resolve(answer(ctx));
  };
  function answer(ctx: HttpContext): void {
    ctx.state.route = "/versions";
    const withdrawn = options.versions.withdrawn(options.clock.now());
    const key = [...withdrawn]
      .map(([v, why]) => `${v}:${why.reason === "sunset" ? "sunset" : why.window.label}`)
      .join(",");
    let body = bodies.get(key);
    if (body === undefined)
      bodies.set(
        key,
        (body = staticRepresentation(versionsDocument(options.versions, withdrawn), "application/json; charset=utf-8")),
      );
    sendStatic(ctx, body);
  }
}
