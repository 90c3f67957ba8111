/**
 * Every request gets an id, echoed in the `X-Request-Id` response header (errors too) and carried
 * by its log line, so a client's bug report and our logs meet. A client's (or gateway's) own id is
 * kept when it is 1–128 characters of `[A-Za-z0-9._-]`; anything else is replaced, never echoed,
 * so a header can't smuggle text into our logs or responses.
 *
 *     app.use(assignRequestId())
 *     // → X-Request-Id: 3f2c8a4e-…   (or the client's, when well-formed)
 */
import { randomUUID } from "node:crypto";
import type { Middleware } from "./context.ts";

export const REQUEST_ID_HEADER = "X-Request-Id";
const WELL_FORMED = /^[A-Za-z0-9._-]{1,128}$/;

export interface RequestIdOptions {
  /** Makes an id when the client sent none (or a malformed one); default crypto.randomUUID. */
  generate?: () => string;
}

export function assignRequestId(options: RequestIdOptions = {}): Middleware {
  const generate = options.generate ?? randomUUID;
  return async function assignRequestIdMiddleware(ctx, next) {
    const offered = ctx.get(REQUEST_ID_HEADER);
    const id = WELL_FORMED.test(offered) ? offered : generate();
    ctx.state.requestId = id;
    // Set before `next`: every answer below keeps it, the error translator's included.
    ctx.set(REQUEST_ID_HEADER, id);
    await next();
  };
}
