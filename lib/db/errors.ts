/**
 * Classifies driver errors. Contexts let unexpected errors through; the web layers ask
 * `isDatabaseUnavailable` to answer 503 instead of 500 while the database cannot be reached.
 */

// Connection-level failures from node's net stack and from PostgreSQL itself (class 08
// connection exception, 57P01–57P03 shutdown/cannot-connect-now, 53300 too many connections).
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EAI_AGAIN",
]);
const SQLSTATE = /^(08...|57P0[123]|53300)$/;
// "timeout expired" is pg's connectionTimeoutMillis: a server that accepts the connection but never answers.
const MESSAGES =
  /Connection terminated|connection timeout|Timeout acquiring a connection|Client has encountered a connection error|PGlite is closed|Pool is destroyed|Connection ended unexpectedly|^timeout expired$/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === "object" && depth < 5; depth++) {
    const { code, message, name } = e as { code?: unknown; message?: unknown; name?: unknown };
    if (typeof code === "string" && (NETWORK_CODES.has(code) || SQLSTATE.test(code))) return true;
    if (name === "KnexTimeoutError") return true;
    if (typeof message === "string" && MESSAGES.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** PostgreSQL's unique_violation, e.g. an e-mail address that is already taken. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e?.code !== "23505") return false;
  if (constraint === undefined) return true;
  return e.constraint === constraint || (typeof e.message === "string" && e.message.includes(constraint));
}
