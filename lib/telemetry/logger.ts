/**
 * The process logger: JSON lines through pino. Secrets never reach it: request logging names
 * routes and statuses, never headers or bodies; errors are written through `safeError` (no query
 * parameters, driver details or quoted values, whoever logs them); `redactSecrets` is a last guard.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config.ts";
import { safeError } from "./safe-error.ts";

export type { Logger } from "pino";

/**
 * Lines are buffered and written in batches of 4 KiB, and at least once a second (an unref'd
 * timer), so a quiet server's lines still show up. The writes are synchronous, on this thread: a
 * write per request cost more than the rest of our request handling, and handing each batch to
 * libuv's thread pool (pino's `sync: false`) woke a pool thread that took the core from the event
 * loop (~7 µs of its time per request under load, profiled). `flushLogger` runs at shutdown; a
 * hard crash can lose the last second of lines. Tests pass their own `destination` to read them.
 *
 *     const lines: string[] = []
 *     const logger = createLogger("debug", { write: (line) => lines.push(line) })
 *
 * `fields` adds to every line (tracing passes the active span's `trace_id` and `span_id`).
 */
export function createLogger(
  level: LogLevel,
  destination: DestinationStream = pino.destination({ sync: true, minLength: 4096, periodicFlush: 1000 }),
  fields?: () => Record<string, string>,
): Logger {
  return pino(
    {
      level,
      base: { service: "hypercast" },
      serializers: { err: safeError, error: safeError },
      formatters: { log: redactSecrets },
      ...(fields === undefined ? {} : { mixin: fields }),
    },
    destination,
  );
}

/** Field names whose values never reach a log line, at the top level or one object down. */
const SECRET_FIELDS: ReadonlySet<string> = new Set([
  "password",
  "current_password",
  "password_hash",
  "email",
  "token",
  "socket_token",
  "secret_key_base",
]);
const CENSOR = "[redacted]";

/**
 * The redaction guard, run on every line's fields: each of `SECRET_FIELDS` at the top level or inside any top-level object (`*.password`…), and
 * `headers.authorization` / `req.headers.authorization`, become "[redacted]". It copies only the
 * objects it changes and never touches the caller's. Written out rather than pino's `redact`
 * option, which copies every line's fields and cost ~9 µs per request line — more than the rest
 * of the line (profiled; benchmarks/NOTES.md, bench:http).
 *
 *     redactSecrets({ user: { id: 1, password: "x" } }) // → { user: { id: 1, password: "[redacted]" } }
 */
export function redactSecrets(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in fields) {
    const value = fields[key];
    let replaced: unknown = value;
    if (SECRET_FIELDS.has(key)) replaced = CENSOR;
    else if (isObject(value)) replaced = redactInner(value, key === "req");
    if (key === "headers" && isObject(replaced) && "authorization" in replaced)
      replaced = { ...replaced, authorization: CENSOR };
    if (replaced !== value) (copy ??= { ...fields })[key] = replaced;
  }
  return copy ?? fields;
}

/** One level down: the secret fields, and `headers.authorization` under `req`. */
function redactInner(object: Record<string, unknown>, isRequest: boolean): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    if (SECRET_FIELDS.has(key)) (copy ??= copyOf(object))[key] = CENSOR;
  }
  const headers = object["headers"];
  if (isRequest && isObject(headers) && "authorization" in headers)
    (copy ??= copyOf(object))["headers"] = { ...headers, authorization: CENSOR };
  return copy ?? object;
}

/** An Error's own fields survive the copy (message and stack are not enumerable). */
function copyOf(object: Record<string, unknown>): Record<string, unknown> {
  return object instanceof Error
    ? { ...object, type: object.name, message: object.message, stack: object.stack }
    : { ...object };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Writes out buffered log lines (call before exiting). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
