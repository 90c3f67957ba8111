/**
 * The HTTP application: the order of middleware, nothing else.
 *
 *     const app = buildApp(deps, { socketUrl: () => "ws://127.0.0.1:4001/socket" })
 *     app.listen(4000)
 */
import Koa from "koa";
import type { HttpDeps } from "./http/deps.ts";
import type { HttpState } from "./http/context.ts";
import { identifyClient } from "./http/client-address.ts";
import { allowCors } from "./http/cors.ts";
import { serveDashboard } from "./http/dashboard.ts";
import { databaseCheck, serveHealth } from "./http/health.ts";
import { instrumentRequests } from "./http/instrument-requests.ts";
import { serveMetrics } from "./http/metrics.ts";
import { assignRequestId } from "./http/request-id.ts";
import { setSecurityHeaders } from "./http/security-headers.ts";
import { stampRequests } from "./http/stamp.ts";
import { answerConditionalGets } from "./http/conditional.ts";
import { lookUpCaller } from "./http/auth.ts";
import { negotiateVersion, stripVersionPrefix, varyByCaller } from "./http/negotiate.ts";
import { serveOpenApi } from "./http/openapi-endpoint.ts";
import { limitRequests } from "./http/rate-limit.ts";
import { buildRouter, composeRoutes } from "./http/router.ts";
import { routes, type RouteOptions } from "./http/routes.ts";
import { serveVersions } from "./http/versions-endpoint.ts";
import { translateErrors } from "./http/translate-errors.ts";

export function buildApp(deps: HttpDeps, options: RouteOptions): Koa<HttpState> {
  // Each route's chain composed once: the router runs it, the OpenAPI documents describe it.
  const table = composeRoutes(deps, routes(deps, options), deps.limiter);
  // Each version's deprecation, sunset and brownouts (V1_SUNSET, V1_BROWNOUTS); the clock says where we are.
  const lifecycle = { versions: deps.config.versions, clock: deps.clock };
  const app = new Koa<HttpState>();
  app.silent = true; // errors are answered and logged by translateErrors
  // Outside everything else, so every answer carries them: errors, preflights, probes.
  app.use(
    stampRequests(
      setSecurityHeaders({ hsts: deps.config.nodeEnv === "production" }),
      varyByCaller(),
      assignRequestId(),
      identifyClient(deps.config.trustProxy),
    ),
  );
  app.use(instrumentRequests(deps.telemetry));
  app.use(allowCors({ origins: deps.config.corsOrigins }));
  app.use(translateErrors(deps.logger));
  // Operational endpoints answer to any Accept: before version negotiation, and not in the hypermedia.
  // Readiness is the database only: Redis trouble reaches every node at once, and taking them all
  // out of rotation would turn it into a full outage. /health's body and the metrics report it.
  const cluster = deps.cluster;
  app.use(
    serveHealth({
      checks: [databaseCheck(deps.db)],
      ...(cluster === undefined ? {} : { reports: () => ({ redis: cluster.redis() }) }),
    }),
  );
  app.use(serveMetrics(deps.metrics));
  // The operations page: static files under a CSP of their own; its data comes over the operator-only channel.
  app.use(serveDashboard({ socketUrl: options.socketUrl }));
  // One store for every limit (one Redis connection when clustered). Probes above are never limited.
  const { config } = deps;
  if (config.rateLimits) {
    app.use(
      limitRequests(deps.limiter, deps.accounts, {
        perUser: { name: "api", points: config.apiRateLimit, windowSeconds: config.apiRateWindowSeconds },
        perAddress: {
          name: "anonymous",
          points: config.anonymousRateLimit,
          windowSeconds: config.anonymousRateWindowSeconds,
        },
      }),
    );
  }
  // API descriptions for gateways and tooling: any Accept, like the endpoints above.
  app.use(serveVersions(lifecycle));
  app.use(serveOpenApi(table, lifecycle));
  app.use(stripVersionPrefix());
  // The bearer token is looked up before negotiation: the caller's pinned version is one of its inputs.
  app.use(lookUpCaller(deps.accounts));
  app.use(negotiateVersion(lifecycle));
  app.use(answerConditionalGets());
  app.use(buildRouter(table));
  return app;
}
