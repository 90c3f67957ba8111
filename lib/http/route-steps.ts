/**
 * The chain steps of every route (chain.ts): the app-wide ones that apply to it (errors,
 * the request limit, version negotiation, conditional GETs) and its own, from its entry in the
 * route table (a bearer token, a body, login and sign-up limits, `Idempotency-Key`, path ids,
 * pagination, the action). The router composes them; the OpenAPI documents read them.
 *
 *     const stepsOf = routeSteps(deps, table, limiter)
 *     stepsOf(route) // → [errors, limitRequests, negotiateVersion, …, action]
 */
import { compileRequestSchemas } from "../schemas.ts";
import { requireUser } from "./auth.ts";
import { bodyParser } from "./body.ts";
import { problem, type ChainStep, type HeaderName, type StepProblem } from "./chain.ts";
import { IDEMPOTENCY_PROBLEMS, honorIdempotencyKeys } from "./idempotency.ts";
import { DEFAULT_LIMIT, MAX_LIMIT } from "./pagination.ts";
import type { ProblemKind } from "./problems.ts";
import { limitLoginAttempts, limitSignUps } from "./rate-limit.ts";
import type { LimiterStore } from "./rate-limit-store.ts";
import type { Route } from "./routes.ts";
import { DOMAIN_PROBLEM_HEADERS } from "./translate-errors.ts";
import type { HttpDeps } from "./deps.ts";

type Json = Record<string, unknown>;

const RATE_LIMITED = problem("rate_limited", "Retry-After", "RateLimit-Policy", "RateLimit");

/** translateErrors (app.ts): the database being away is a 503 anywhere (anything else unexpected is the `default` 500). */
export const ERRORS_STEP: ChainStep = {
  name: "translateErrors",
  runs: "app",
  contract: { problems: [problem("unavailable", "Retry-After")] },
};

/** limitRequests (app.ts, when RATE_LIMITS is on): every request counts, per user or per client address. */
export const REQUEST_LIMIT_STEP: ChainStep = {
  name: "limitRequests",
  runs: "app",
  contract: { problems: [RATE_LIMITED], headers: ["RateLimit-Policy", "RateLimit"] },
};

/** negotiateVersion (app.ts): 406 when no acceptable version is left; a deprecated version is marked, and withdrawn in brownouts and after its sunset. */
export const NEGOTIATION_STEP: ChainStep = {
  name: "negotiateVersion",
  runs: "app",
  contract: ({ deprecated }) =>
    deprecated
      ? {
          problems: [problem("not_acceptable"), problem("version_gone", "Retry-After", "Link")],
          headers: ["Deprecation", "Sunset"],
        }
      : { problems: [problem("not_acceptable")] },
};

/** answerConditionalGets (app.ts), for GET routes: a strong ETag, and 304 for `If-None-Match`. */
export const CONDITIONAL_STEP: ChainStep = {
  name: "conditionalGet",
  runs: "app",
  contract: {
    parameters: [
      {
        name: "If-None-Match",
        in: "header",
        required: false,
        description: "ETags of representations the client holds; a match gets 304",
        schema: { type: "string" },
      },
    ],
    headers: ["ETag"],
    responses: {
      "304": { description: "Not Modified: the representation still matches `If-None-Match`", headers: ["ETag"] },
    },
  },
};

/** Path ids (`:id`), read by the action with `idParam`: anything but a positive 32-bit integer, or an id of nothing, is a 404. */
export function pathIdsStep(path: string): ChainStep | undefined {
  const names = [...path.matchAll(/:(\w+)/g)].map(([, name]) => name!);
  if (names.length === 0) return undefined;
  return {
    name: "pathIds",
    runs: "action",
    contract: {
      parameters: names.map((name) => ({
        name,
        in: "path",
        required: true,
        schema: { type: "integer", minimum: 1, maximum: 2147483647 },
      })),
      problems: [problem("not_found")],
    },
  };
}

/** `?limit=` and `?cursor=`, read by the action with `pageParams`; pages link to their neighbours. */
export const PAGINATION_STEP: ChainStep = {
  name: "pagination",
  runs: "action",
  contract: {
    parameters: [
      {
        name: "limit",
        in: "query",
        required: false,
        description: "Items per page",
        schema: { type: "integer", minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
      },
      {
        name: "cursor",
        in: "query",
        required: false,
        description: "An opaque cursor from a `next` or `prev` link",
        schema: { type: "string" },
      },
    ],
    problems: [problem("invalid_parameter")],
    headers: ["Link"],
  },
};

const IDEMPOTENCY_KEY: Json = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Makes the POST safe to retry for 24 h: the same key with the same request replays the first result (`Idempotent-Replayed: true`); with a different request → 422; while the first is running → 409. 1–255 visible ASCII characters; use a random UUID.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
};

/** The action's own outcomes (the route table's `problems`), with the headers translateErrors gives them. */
export function actionStep(route: Route): ChainStep {
  const headers = DOMAIN_PROBLEM_HEADERS as Partial<Record<ProblemKind, Readonly<Record<string, string>>>>;
  const problems: StepProblem[] = (route.problems ?? []).map((kind) =>
    problem(kind, ...(Object.keys(headers[kind] ?? {}) as HeaderName[])),
  );
  return { name: "action", runs: "action", contract: { problems, headers: route.returns.headers ?? [] } };
}

/** Builds, once, the step descriptors every route's chain is made of. */
export function routeSteps(
  deps: Pick<HttpDeps, "config" | "accounts" | "idempotency" | "logger">,
  table: readonly Route[],
  limiter: LimiterStore,
): (route: Route) => ChainStep[] {
  const { config } = deps;
  const acceptBody = bodyParser({
    schemas: compileRequestSchemas(table.flatMap((r) => (r.body === undefined ? [] : [r.body]))),
    limitBytes: config.bodyLimitBytes,
  });
  const authenticate: ChainStep = {
    name: "requireUser",
    runs: "router",
    check: requireUser,
    contract: { bearer: true, problems: [problem("unauthorized", "WWW-Authenticate")] },
  };
  const window = config.loginWindowSeconds;
  const guardLogin: ChainStep = {
    name: "limitLoginAttempts",
    runs: "router",
    around: limitLoginAttempts(limiter, {
      perEmail: { name: "login-email", points: config.loginFailuresPerEmail, windowSeconds: window },
      perAddress: { name: "login-address", points: config.loginFailuresPerAddress, windowSeconds: window },
    }),
    contract: { problems: [RATE_LIMITED] },
  };
  const guardSignUp: ChainStep = {
    name: "limitSignUps",
    runs: "router",
    around: limitSignUps(limiter, {
      name: "signup",
      points: config.signUpsPerAddress,
      windowSeconds: config.signUpWindowSeconds,
    }),
    contract: { problems: [RATE_LIMITED], headers: ["RateLimit-Policy", "RateLimit"] },
  };
  const idempotent: ChainStep = {
    name: "honorIdempotencyKeys",
    runs: "router",
    around: honorIdempotencyKeys(deps.idempotency, deps.logger, { secretKeyBase: config.secretKeyBase }),
    contract: {
      parameters: [IDEMPOTENCY_KEY],
      problems: [
        problem("bad_request"),
        problem(IDEMPOTENCY_PROBLEMS.inFlight, "Retry-After"),
        problem(IDEMPOTENCY_PROBLEMS.reused),
      ],
      headers: ["Idempotent-Replayed"],
    },
  };
  const bodies = new Map<string, ChainStep>();
  const bodyStep = (schema: string): ChainStep => {
    let step = bodies.get(schema);
    if (step === undefined) {
      step = {
        name: "acceptBody",
        runs: "router",
        around: acceptBody(schema),
        contract: {
          body: schema,
          problems: [
            problem("malformed_json"),
            problem("payload_too_large"),
            problem("unsupported_media_type"),
            problem("validation_failed"),
          ],
        },
      };
      bodies.set(schema, step);
    }
    return step;
  };

  return (route) => {
    const steps: ChainStep[] = [ERRORS_STEP];
    if (config.rateLimits) steps.push(REQUEST_LIMIT_STEP);
    steps.push(NEGOTIATION_STEP);
    if (route.method === "get") steps.push(CONDITIONAL_STEP);
    // In the order they run in front of the action.
    if (route.auth) steps.push(authenticate);
    if (route.body !== undefined) steps.push(bodyStep(route.body));
    if (route.login === true && config.rateLimits) steps.push(guardLogin);
    if (route.signUp === true && config.rateLimits) steps.push(guardSignUp);
    // A POST whose answer carries a credential is never kept for a replay.
    if (route.method === "post" && route.credentials !== true) steps.push(idempotent);
    const ids = pathIdsStep(route.path);
    if (ids !== undefined) steps.push(ids);
    if (route.returns.collection !== undefined) steps.push(PAGINATION_STEP);
    steps.push(actionStep(route));
    return steps;
  };
}
