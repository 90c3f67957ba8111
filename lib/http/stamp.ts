/**
 * Request stamps: the synchronous first steps every request takes (security headers, `Vary`,
 * the request id, the client address). Each only sets headers or request state and never
 * answers, so they run one after another in a single middleware: one frame and no promise per
 * request, where a middleware each cost an async frame each.
 *
 *     app.use(stampRequests(setSecurityHeaders({ hsts }), varyByCaller(), assignRequestId()))
 */
import type { HttpContext, Middleware } from "./context.ts";

/** Sets headers or request state; never answers, never waits. */
export type RequestStamp = (ctx: HttpContext) => void;

export function stampRequests(...stamps: readonly RequestStamp[]): Middleware {
  return function stampRequestsMiddleware(ctx, next) {
    for (const stamp of stamps) stamp(ctx);
    return next();
  };
}
