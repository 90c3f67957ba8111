/**
 * The process logger: JSON lines through pino. Secrets never reach it: request logging names
 * routes and statuses, never headers or bodies, and the redaction list is a second guard.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config.ts";

export type { Logger } from "pino";

/**
 * Lines are written asynchronously through a 4 KiB buffer: a synchronous write per request
 * costs more than the rest of our request handling. `flushLogger` runs at shutdown; a hard
 * crash can lose the last buffered lines. Tests pass their own `destination` to read the lines.
 *
 *     const lines: string[] = []
 *     const logger = createLogger("debug", { write: (line) => lines.push(line) })
 *
 * `fields` adds to every line (tracing passes the active span's `trace_id` and `span_id`).
 */
export function createLogger(
  level: LogLevel,
  destination: DestinationStream = pino.destination({ sync: false, minLength: 4096 }),
  fields?: () => Record<string, string>,
): Logger {
  return pino({
    level,
    ...(fields === undefined ? {} : { mixin: fields }),
    base: { service: "hypercast" },
    redact: {
      paths: [
        "password",
        "token",
        "socket_token",
        "secret_key_base",
        "*.password",
        "*.token",
        "*.socket_token",
        "*.secret_key_base",
        "headers.authorization",
        "req.headers.authorization",
      ],
      censor: "[redacted]",
    },
  }, destination);
}

/** Writes out buffered log lines (call before exiting). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
