/** One log line per request: method, route, status, duration and API version; never headers or bodies. */
import type { Logger } from "pino";
import type { HttpContext, Middleware } from "./context.ts";

export function logRequests(logger: Logger): Middleware {
  return async function logRequestsMiddleware(ctx, next) {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // Checked per request, not at boot: pino's level can be changed at run time.
      if (logger.isLevelEnabled("info")) logRequest(logger, ctx, start);
    }
  };
}

function logRequest(logger: Logger, ctx: HttpContext, start: bigint): void {
  const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  logger.info(
    {
      method: ctx.method,
      path: withoutQuery(ctx.originalUrl),
      route: typeof route === "string" ? route : undefined,
      status: ctx.status,
      api_version: ctx.state.version,
      user_id: ctx.state.user?.id,
      duration_ms: Number(process.hrtime.bigint() - start) / 1e6,
    },
    "request",
  );
}

function withoutQuery(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
