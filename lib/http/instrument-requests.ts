/**
 * Reports every HTTP request, errors and 404s included, as one `http.request.stop` telemetry
 * event: request id, method, path, route pattern, status, API version, user id, the user's pinned
 * version and duration.
 * Logging and metrics are handlers of that event (lib/telemetry); this middleware knows neither.
 * It sits outside the error translator, so the status it reports is the one the client got.
 * The request runs inside `telemetry.span("http.request.start")`: when tracing, a SERVER span that
 * continues an incoming `traceparent` and parents the request's queries and broadcasts.
 *
 *     app.use(instrumentRequests(deps.telemetry))
 */
import type { Telemetry } from "../telemetry/index.ts";
import { requestIdOf, type HttpContext, type Middleware } from "./context.ts";

export function instrumentRequests(telemetry: Telemetry): Middleware {
  return function instrumentRequestsMiddleware(ctx, next) {
    if (!telemetry.tracing()) return instrumented(ctx, next);
    const start = {
      method: ctx.method,
      path: withoutQuery(ctx.originalUrl),
      traceparent: header(ctx, "traceparent"),
      tracestate: header(ctx, "tracestate"),
    };
    return telemetry.span("http.request.start", start, () => instrumented(ctx, next));
  };

  function instrumented(ctx: HttpContext, next: () => Promise<unknown>): Promise<void> {
    const start = performance.now();
    // One reaction for both outcomes instead of an async frame with try/finally.
    const stop = () => {
      telemetry.emit(
        "http.request.stop",
        { duration_ms: performance.now() - start },
        {
          request_id: requestIdOf(ctx),
          method: ctx.method,
          path: withoutQuery(ctx.originalUrl),
          route: routeOf(ctx),
          status: ctx.status,
          api_version: ctx.state.version,
          user_id: ctx.state.user?.id,
          pinned_version: ctx.state.user?.apiVersion,
          gone_version: ctx.state.goneVersion,
        },
      );
    };
    return next().then(stop, (error: unknown) => {
      stop();
      throw error;
    });
  }
}

function header(ctx: HttpContext, name: string): string | undefined {
  const value = ctx.headers[name];
  return typeof value === "string" ? value : undefined;
}

/** @koa/router's matched pattern (`/users/:id`, the `/vN` prefix already stripped), or ours. */
function routeOf(ctx: HttpContext): string | undefined {
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === "string" ? matched : ctx.state.route;
}

function withoutQuery(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
