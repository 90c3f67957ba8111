/**
 * The outermost middleware: every failure below it becomes an RFC 9457 problem+json response
 * (the FallbackController). Reporting a 5xx (the log) is separate from answering it, and an
 * answer never carries internals: no stack, SQL or path.
 */
import type { Logger } from "pino";
import { DomainError } from "../errors.ts";
import { isDatabaseUnavailable } from "../db/errors.ts";
import type { Middleware } from "./context.ts";
import { DOMAIN_PROBLEMS, HttpProblem, PROBLEMS, problem, type ProblemKind } from "./problems.ts";

export const PROBLEM_JSON = "application/problem+json";
const RETRY_AFTER_SECONDS = "5";

export function translateErrors(logger: Logger): Middleware {
  return async function translateErrorsMiddleware(ctx, next) {
    try {
      await next();
    } catch (error) {
      const { body, headers } = toProblem(error);
      if (body.status >= 500 && body.status !== 503) {
        logger.error(
          { err: error, request_id: ctx.state.requestId, method: ctx.method, path: ctx.path },
          "request failed",
        );
      } else if (body.status === 503) {
        logger.warn(
          { err: { message: (error as Error).message }, request_id: ctx.state.requestId, path: ctx.path },
          "database unavailable",
        );
      }
      ctx.status = body.status;
      for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
      ctx.type = PROBLEM_JSON;
      ctx.body = { ...body, instance: ctx.originalUrl.split("?")[0] };
      ctx.vary("Accept");
    }
  };
}

function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof DomainError) {
    const kind = DOMAIN_PROBLEMS[error.code];
    const extensions = error.errors.length > 0 ? { errors: error.errors } : {};
    return new HttpProblem(problem(kind, error.message, extensions), domainHeaders(kind));
  }
  if (isDatabaseUnavailable(error)) {
    return HttpProblem.of(
      "unavailable",
      "the database is unreachable; retry later",
      {},
      { "Retry-After": RETRY_AFTER_SECONDS },
    );
  }
  // http-errors thrown by Koa or its middleware for client mistakes, e.g. ctx.throw(400).
  const status = (error as { status?: unknown; expose?: unknown }).status;
  if (typeof status === "number" && status >= 400 && status < 500 && (error as { expose?: unknown }).expose === true) {
    const kind = kindForStatus(status);
    return HttpProblem.of(kind, (error as Error).message);
  }
  return HttpProblem.of("internal", "an unexpected error occurred; it has been logged");
}

/** The headers a domain error's answer carries, by the problem it becomes (route steps document them). */
export const DOMAIN_PROBLEM_HEADERS = {
  unauthorized: { "WWW-Authenticate": 'Bearer realm="hypercast"' },
  unavailable: { "Retry-After": RETRY_AFTER_SECONDS },
  rate_limited: { "Retry-After": "1" },
} as const satisfies Partial<Record<ProblemKind, Readonly<Record<string, string>>>>;

function domainHeaders(kind: ProblemKind): Readonly<Record<string, string>> {
  return (DOMAIN_PROBLEM_HEADERS as Partial<Record<ProblemKind, Readonly<Record<string, string>>>>)[kind] ?? {};
}

function kindForStatus(status: number): ProblemKind {
  const entry = Object.entries(PROBLEMS).find(([, p]) => p.status === status);
  return (entry?.[0] as ProblemKind | undefined) ?? "bad_request";
}
