/**
 * Every request gets an id, echoed in the `X-Request-Id` response header (errors too) and carried
 * by its log line, so a client's bug report and our logs meet. A client's (or gateway's) own id is
 * kept when it is 1–128 characters of `[A-Za-z0-9._-]`; anything else is replaced, never echoed,
 * so a header can't smuggle text into our logs or responses.
 *
 *     app.use(stampRequests(assignRequestId()))
 *     // → X-Request-Id: 3f2c8a4e-…   (or the client's, when well-formed)
 */
import { randomUUID } from "node:crypto";
import type { RequestStamp } from "./stamp.ts";

export const REQUEST_ID_HEADER = "X-Request-Id";
const WELL_FORMED = /^[A-Za-z0-9._-]{1,128}$/;

export interface RequestIdOptions {
  /** Makes an id when the client sent none (or a malformed one); default crypto.randomUUID. */
  generate?: () => string;
}

export function assignRequestId(options: RequestIdOptions = {}): RequestStamp {
  const generate = options.generate ?? randomUUID;
  return function assignRequestId(ctx) {
    const offered = ctx.req.headers["x-request-id"];
    const id = typeof offered === "string" && WELL_FORMED.test(offered) ? offered : generate();
    ctx.state.requestId = id;
    // Set before anything answers: every answer keeps it, the error translator's included.
    ctx.res.setHeader(REQUEST_ID_HEADER, id);
  };
}
