/** One log line per request: method, route, status, duration and API version; never headers or bodies. */
import type { Logger } from "pino";
import type { Middleware } from "./context.ts";

export function logRequests(logger: Logger): Middleware {
  return async function logRequestsMiddleware(ctx, next) {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      logger.info(
        {
          method: ctx.method,
          path: ctx.originalUrl.split("?")[0],
          route: typeof route === "string" ? route : undefined,
          status: ctx.status,
          api_version: ctx.state.version,
          user_id: ctx.state.user?.id,
          duration_ms: Number(process.hrtime.bigint() - start) / 1e6,
        },
        "request",
      );
    }
  };
}
