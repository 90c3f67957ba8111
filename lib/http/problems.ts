/**
 * The problem catalogue (RFC 9457): every kind of failure the HTTP API reports, with its
 * status, title and stable type URI. Pure: the error translator and the tests share it.
 */
import type { ErrorCode, FieldError } from "../errors.ts";

export const PROBLEMS = {
  bad_request: { status: 400, title: "Bad Request" },
  malformed_json: { status: 400, title: "Malformed JSON" },
  invalid_parameter: { status: 400, title: "Invalid query parameter" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not Found" },
  method_not_allowed: { status: 405, title: "Method Not Allowed" },
  not_acceptable: { status: 406, title: "Not Acceptable" },
  conflict: { status: 409, title: "Conflict" },
  version_gone: { status: 410, title: "Version Gone" },
  payload_too_large: { status: 413, title: "Payload Too Large" },
  unsupported_media_type: { status: 415, title: "Unsupported Media Type" },
  validation_failed: { status: 422, title: "Validation Failed" },
  rate_limited: { status: 429, title: "Too Many Requests" },
  internal: { status: 500, title: "Internal Server Error" },
  unavailable: { status: 503, title: "Service Unavailable" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemKind = keyof typeof PROBLEMS;

/** Which problem each domain error code becomes. */
export const DOMAIN_PROBLEMS = {
  not_found: "not_found",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  invalid: "validation_failed",
  conflict: "conflict",
  unavailable: "unavailable",
  rate_limited: "rate_limited",
} as const satisfies Record<ErrorCode, ProblemKind>;

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: ReadonlyArray<FieldError | { parameter: string; detail: string }>;
  [extension: string]: unknown;
}

/** The stable type URI of a problem kind, e.g. `/problems/not-found`, resolved against the API's origin. */
export function problemType(kind: ProblemKind): string {
  return `/problems/${kind.replaceAll("_", "-")}`;
}

export function problem(kind: ProblemKind, detail?: string, extensions: Partial<ProblemDetails> = {}): ProblemDetails {
  const { status, title } = PROBLEMS[kind];
  return { type: problemType(kind), title, status, ...(detail === undefined ? {} : { detail }), ...extensions };
}

/** A problem to throw from middleware; the translator renders it. Headers go on the response. */
export class HttpProblem extends Error {
  constructor(
    readonly body: ProblemDetails,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(body.detail ?? body.title);
    this.name = "HttpProblem";
  }

  static of(
    kind: ProblemKind,
    detail?: string,
    extensions?: Partial<ProblemDetails>,
    headers?: Record<string, string>,
  ): HttpProblem {
    return new HttpProblem(problem(kind, detail, extensions), headers);
  }
}
