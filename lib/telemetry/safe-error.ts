/**
 * What of an error may reach a log line: the logger's `err` serializer, so it holds for every
 * `logger.x({ err })` whoever caught the error.
 *
 * Drivers attach what a query carried: PGlite sets `query`, `params` and `queryOptions` on its
 * errors; PostgreSQL's `detail` names the values of a violated key (`Key (lower(email))=(ada@…)`)
 * and `where` can quote a bind parameter; knex prefixes the message with the SQL, with the
 * parameters inlined unless `compileSqlOnError: false` (lib/db sets it). So an error is logged as
 * an allow-list — its class, code, message, stack and the SQLSTATE fields that name schema
 * objects — with values quoted in messages replaced, and its `cause` chain treated the same way.
 *
 *     safeError(pgliteError)
 *     // → { type: "error", message: "insert into \"users\" … values ($1, $2) - invalid byte sequence …", code: "22021", stack: "…" }
 */

/** PostgreSQL error fields that name schema objects or classify the error, never values. */
const KEPT_FIELDS = [
  "code",
  "severity",
  "routine",
  "constraint",
  "table",
  "column",
  "schema",
  "dataType",
  "errno",
  "syscall",
  "status",
] as const;
const MAX_DEPTH = 3;

/**
 * Messages that quote an input value: PostgreSQL's `invalid input syntax for type integer: "abc"`,
 * `malformed array literal: "…"`, and V8's `Unexpected token …, "{"password":…" is not valid JSON`.
 */
const QUOTED_VALUE = /: "(?:[^"\\]|\\.)*"/g;
const JSON_SNIPPET = /, "[\s\S]*" is not valid JSON/g;

export function scrubMessage(message: string): string {
  return message
    .replace(JSON_SNIPPET, ", [value redacted] is not valid JSON")
    .replace(QUOTED_VALUE, ": [value redacted]");
}

export function safeError(error: unknown, depth = 0): Record<string, unknown> {
  if (error === null || typeof error !== "object") return { message: scrubMessage(String(error)) };
  const source = error as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const type = error instanceof Error ? error.constructor.name : undefined;
  if (type !== undefined) out["type"] = type;
  const message = typeof source["message"] === "string" ? scrubMessage(source["message"]) : undefined;
  if (message !== undefined) out["message"] = message;
  for (const field of KEPT_FIELDS) {
    const value = source[field];
    if (typeof value === "string" || typeof value === "number") out[field] = value;
  }
  if (typeof source["stack"] === "string") {
    // The stack's first lines repeat the message as it was when the error was made (before knex
    // rewrote it): keep only the frames.
    const frames = source["stack"].split("\n").filter((line) => /^\s+at /.test(line));
    out["stack"] = [`${type ?? "Error"}: ${message ?? ""}`, ...frames].join("\n");
  }
  if (depth < MAX_DEPTH) {
    if (source["cause"] !== undefined) out["cause"] = safeError(source["cause"], depth + 1);
    if (Array.isArray(source["errors"]) && error instanceof AggregateError) {
      out["errors"] = source["errors"].slice(0, 5).map((e: unknown) => safeError(e, depth + 1));
    }
  }
  return out;
}
