/**
 * Domain errors: what contexts throw when an operation cannot proceed. They carry a code,
 * never an HTTP status; the web layers (HTTP problem translator, channel replies) map codes.
 *
 *     throw new NotFound("room", 42)
 */

export type ErrorCode =
  "not_found" | "unauthorized" | "forbidden" | "invalid" | "conflict" | "unavailable" | "rate_limited";

export interface FieldError {
  /** A JSON Pointer into the offending input, e.g. `/email`. */
  pointer: string;
  detail: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors: readonly FieldError[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFound extends DomainError {
  constructor(resource: string, id?: number | string) {
    super("not_found", id === undefined ? `${resource} not found` : `${resource} ${id} not found`);
  }
}

export class Unauthorized extends DomainError {
  constructor(message = "invalid credentials") {
    super("unauthorized", message);
  }
}

export class Forbidden extends DomainError {
  constructor(message: string) {
    super("forbidden", message);
  }
}

export class Invalid extends DomainError {
  constructor(message: string, errors: readonly FieldError[] = []) {
    super("invalid", message, errors);
  }
}

export class Conflict extends DomainError {
  constructor(message: string, errors: readonly FieldError[] = []) {
    super("conflict", message, errors);
  }
}

/** The database (or another backing service) cannot be reached right now; retrying later may work. */
export class Unavailable extends DomainError {
  constructor(message = "the database is unavailable", options?: { cause?: unknown }) {
    super("unavailable", message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** The caller has too much in progress or spent its quota; retrying a little later may work. */
export class RateLimited extends DomainError {
  constructor(message: string) {
    super("rate_limited", message);
  }
}
