/**
 * The process logger: JSON lines through pino. Secrets never reach it: request logging names
 * routes and statuses, never headers or bodies, and the redaction list is a second guard.
 */
import { pino, type Logger } from "pino";
import type { LogLevel } from "../config.ts";

export type { Logger } from "pino";

export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: "hypercast" },
    redact: {
      paths: ["password", "token", "socket_token", "*.password", "*.token", "*.socket_token", "headers.authorization", "req.headers.authorization"],
      censor: "[redacted]",
    },
  });
}
