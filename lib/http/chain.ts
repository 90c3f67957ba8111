/**
 * A route's chain, described once: each step is a descriptor of what it runs in front of the
 * action and of what it adds to the route's contract (the problems it may answer, the headers it
 * puts on answers, the parameters it reads). The router composes the steps' code once per route
 * (router.ts); the OpenAPI documents read the same steps (openapi.ts). A step that changes what a
 * route can answer changes its documentation with it, and a test drives every status each step
 * declares (tests/http/chain.test.ts).
 *
 * Steps run in one of three places, said by `runs`:
 * - `router`: `check` (synchronous, may throw a problem) or `around` (wraps the rest of the chain)
 *   run in front of the action, in the order of the list.
 * - `app`: app.ts runs it for every request before routing (negotiation, the request limit…);
 *   the descriptor says what it adds to each route it applies to.
 * - `action`: the action does the step's work through a helper (`idParam`, `pageParams`).
 *
 *     const steps = [requireUserStep, ...]
 *     composeSteps(steps, route.action) // → one function per route
 */
import type { ApiVersion } from "../versions.ts";
import type { HttpContext, Middleware } from "./context.ts";
import type { ProblemKind } from "./problems.ts";

type Json = Record<string, unknown>;

/** Names of the response headers the documents describe (openapi.ts's `components.headers`). */
export type HeaderName =
  | "ETag"
  | "Location"
  | "Link"
  | "Idempotent-Replayed"
  | "RateLimit-Policy"
  | "RateLimit"
  | "Retry-After"
  | "WWW-Authenticate"
  | "Allow"
  | "Deprecation"
  | "Sunset";

/** A problem a step may answer: a catalogue kind, or one of the step's own types (idempotency's). */
export interface StepProblem {
  readonly kind: ProblemKind | { readonly status: number; readonly title: string; readonly type: string };
  /** Headers the problem answer carries. */
  readonly headers?: readonly HeaderName[];
}

/** What a step adds to a route's contract, in one version's document. */
export interface StepContract {
  readonly problems?: readonly StepProblem[];
  /** OpenAPI parameter objects (path, query or header). */
  readonly parameters?: readonly Json[];
  /** Headers the step adds to successful answers. */
  readonly headers?: readonly HeaderName[];
  /** Answers other than success and problems, e.g. 304. */
  readonly responses?: Readonly<Record<string, { description: string; headers: readonly HeaderName[] }>>;
  /** The operation needs a bearer token. */
  readonly bearer?: true;
  /** The schema (under schemas/v<N>/) that validates the request body. */
  readonly body?: string;
}

/** The facts about a document's version that a step's contract may depend on. */
export interface DocumentVersion {
  readonly version: ApiVersion;
  readonly deprecated: boolean;
}

export interface ChainStep {
  /** For messages and tests, e.g. `requireUser`. */
  readonly name: string;
  readonly runs: "app" | "router" | "action";
  /** Runs synchronously in front of the rest; throws to answer with a problem. */
  readonly check?: (ctx: HttpContext) => void;
  /** Runs around the rest of the chain (`next` runs it). */
  readonly around?: Middleware;
  readonly contract: StepContract | ((doc: DocumentVersion) => StepContract);
}

/** The step's contract in a version's document. */
export function contractOf(step: ChainStep, doc: DocumentVersion): StepContract {
  return typeof step.contract === "function" ? step.contract(doc) : step.contract;
}

export function problem(kind: StepProblem["kind"], ...headers: HeaderName[]): StepProblem {
  return headers.length === 0 ? { kind } : { kind, headers };
}

/**
 * The steps' code and the action as one function, built once per route: synchronous checks are
 * plain calls (no promise, no frame of their own); only `around` steps add a frame.
 *
 *     const run = composeSteps(steps, (ctx) => users.show(ctx))
 *     await run(ctx)
 */
export function composeSteps(
  steps: readonly ChainStep[],
  action: (ctx: HttpContext) => Promise<void>,
): (ctx: HttpContext) => Promise<void> {
  const running = steps.filter((s) => s.runs === "router");
  for (const step of running) {
    if ((step.check === undefined) === (step.around === undefined))
      throw new Error(`chain step ${step.name}: a router step has exactly one of check and around`);
  }
  let run = action;
  // Consecutive checks run in one loop, in order, before whatever follows them.
  for (let i = running.length - 1; i >= 0;) {
    const step = running[i]!;
    if (step.around !== undefined) {
      const around = step.around;
      const inner = run;
      run = (ctx) => around(ctx, () => inner(ctx));
      i--;
      continue;
    }
    const checks: Array<(ctx: HttpContext) => void> = [];
    while (i >= 0 && running[i]!.check !== undefined) checks.unshift(running[i--]!.check!);
    const inner = run;
    const only = checks.length === 1 ? checks[0]! : undefined;
    run =
      only !== undefined
        ? (ctx) => {
            only(ctx);
            return inner(ctx);
          }
        : (ctx) => {
            for (const check of checks) check(ctx);
            return inner(ctx);
          };
  }
  return async (ctx) => run(ctx);
}
