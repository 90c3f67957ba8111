/**
 * WebSocket close codes the realtime tier uses, and the limits behind them. Every code a
 * client can see from us is listed here (the README copies this table).
 *
 * | code | when |
 * |------|------|
 * | 1003 | a binary frame arrived (the protocol is JSON in text frames only) |
 * | 1009 | an inbound frame over `MAX_FRAME_BYTES` (64 KiB). Frames over `HARD_FRAME_BYTES` (1 MiB) are cut off by uWebSockets.js itself without a close frame (the client sees 1006) |
 * | 1012 | the server is shutting down or restarting; clients reconnect (Phoenix's drain code) |
 * | 4400 | a malformed frame from which no reply ref could be recovered (not JSON, not an array, a non-string ref) |
 * | 4401 | the session the socket token was minted under was revoked (log-out, user deleted, password changed) |
 * | 4429 | the socket kept flooding: more than `FLOOD_REFUSALS` events refused for rate within `FLOOD_WINDOW_MS` |
 * | 4503 | the socket's send buffer passed `MAX_BACKPRESSURE_BYTES` (a slow consumer is disconnected, never skipped) |
 *
 * uWebSockets.js may also close a slow consumer itself (closeOnBackpressureLimit), which the
 * client sees as 1006. None of these is 1000: phoenix 1.8.0–1.8.15 would not reconnect after it.
 */

export const CLOSE = Object.freeze({
  UNSUPPORTED_DATA: 1003,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  MALFORMED: 4400,
  REVOKED: 4401,
  FLOODING: 4429,
  SLOW_CONSUMER: 4503,
});

/** The largest inbound frame the protocol accepts; larger ones close the socket with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** uWebSockets.js's own cap (it drops the connection without a close frame above it). */
export const HARD_FRAME_BYTES = 1024 * 1024;
/** Bytes a socket may have queued for sending before it is disconnected. */
export const MAX_BACKPRESSURE_BYTES = 1024 * 1024;
/** Seconds without any traffic before uWebSockets.js closes a socket (pings are sent automatically). */
export const IDLE_TIMEOUT_SECONDS = 120;
/** Topics one socket may have joined at once (Phoenix's default). */
export const MAX_CHANNELS = 100;
/** Events refused for rate that a socket may get within `FLOOD_WINDOW_MS`; one more closes it with 4429. */
export const FLOOD_REFUSALS = 200;
export const FLOOD_WINDOW_MS = 10_000;
