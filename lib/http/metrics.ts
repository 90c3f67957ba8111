/**
 * `GET /metrics`: the Prometheus exposition of this app's registry (lib/telemetry/metrics.ts),
 * served before version negotiation so a scraper's `Accept: text/plain` is fine, and left out of
 * the API's hypermedia: it is for operators, who should keep it off the public internet (route it
 * only from the scraper's network at the gateway).
 *
 *     app.use(serveMetrics(deps.metrics))
 */
import type { Metrics } from "../telemetry/metrics.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

export const METRICS_PATH = "/metrics";

export function serveMetrics(metrics: Metrics): Middleware {
  return function serveMetricsMiddleware(ctx, next) {
    if (ctx.path !== METRICS_PATH) return next();
    return answer(ctx);
  };
  async function answer(ctx: HttpContext): Promise<void> {
    ctx.state.route = METRICS_PATH;
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw HttpProblem.of(
        "method_not_allowed",
        `${ctx.method} is not allowed here; allowed: GET, HEAD`,
        {},
        { Allow: "GET, HEAD" },
      );
    }
    ctx.body = await metrics.render();
    // After the body: a string body would otherwise set text/plain without the format version.
    ctx.set("Content-Type", metrics.contentType);
    ctx.set("Cache-Control", "no-store");
  }
}
