/**
 * Liveness and readiness for gateways and orchestrators, served before version negotiation so
 * they answer to any `Accept` (a probe sends whatever its tool sends):
 *
 * - `GET /health`: 200 `{"status":"ok"}` while the process runs and its event loop turns. It checks
 *   nothing else, so an orchestrator never restarts a healthy process because the database is down.
 *   Dependencies whose trouble must not take the node out of rotation (Redis, when clustered) are
 *   reported in its body, read from state kept in memory: `{"status":"ok","checks":{"redis":"unavailable"}}`.
 * - `GET /ready`: 200 when every readiness check passes within `timeoutMs`, else 503 problem+json
 *   with `Retry-After` and which check failed, so a load balancer takes this instance out of rotation.
 *
 *     app.use(serveHealth({ checks: [{ name: "database", check: () => db.raw("select 1") }] }))
 *     // GET /ready → 200 {"status":"ok","checks":{"database":"ok"}}
 */
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

export interface ReadinessCheck {
  /** Named in the answer: `checks: {database: "ok"}`. */
  name: string;
  /** Resolves when the dependency answers; rejects (or outlives the timeout) when it does not. */
  check: () => Promise<unknown>;
}

export interface HealthOptions {
  checks: readonly ReadinessCheck[];
  /** How long the checks together may take before `/ready` says 503 (default 2000 ms). */
  timeoutMs?: number;
  /** Reported by `/health` (always 200), never by `/ready`: synchronous, from state kept in memory. */
  reports?: () => Record<string, CheckState>;
  /** `Retry-After` of a 503, in seconds (default 5). */
  retryAfterSeconds?: number;
}

export type CheckState = "ok" | "unavailable";

export function serveHealth(options: HealthOptions): Middleware {
  const timeoutMs = options.timeoutMs ?? 2000;
  const retryAfter = String(options.retryAfterSeconds ?? 5);
  // One run at a time, shared by concurrent probes: a hung database must not pile up queries.
  let running: Promise<Record<string, CheckState>> | undefined;
  const readiness = () => {
    running ??= runChecks(options.checks, timeoutMs).finally(() => {
      running = undefined;
    });
    return running;
  };

  // A plain function in front: every other request passes through without an async frame of its own.
  return function serveHealthMiddleware(ctx, next) {
    if (ctx.path !== "/health" && ctx.path !== "/ready") return next();
    return answer(ctx);
  };
  async function answer(ctx: HttpContext): Promise<void> {
    ctx.state.route = ctx.path;
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw HttpProblem.of(
        "method_not_allowed",
        `${ctx.method} is not allowed here; allowed: GET, HEAD`,
        {},
        { Allow: "GET, HEAD" },
      );
    }
    ctx.set("Cache-Control", "no-store");
    if (ctx.path === "/health") {
      ctx.body = options.reports === undefined ? { status: "ok" } : { status: "ok", checks: options.reports() };
      return;
    }
    const checks = await readiness();
    const failed = Object.keys(checks).filter((name) => checks[name] !== "ok");
    if (failed.length > 0) {
      throw HttpProblem.of(
        "unavailable",
        `not ready: ${failed.join(", ")} failed or did not answer within ${timeoutMs} ms; retry later`,
        { checks },
        { "Retry-After": retryAfter, "Cache-Control": "no-store" },
      );
    }
    ctx.body = { status: "ok", checks };
  }
}

async function runChecks(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<Record<string, CheckState>> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"unavailable">((resolve) => {
    timer = setTimeout(() => resolve("unavailable"), timeoutMs);
  });
  try {
    const states = await Promise.all(
      checks.map((c) =>
        Promise.race([
          c.check().then(
            (): CheckState => "ok",
            (): CheckState => "unavailable",
          ),
          timedOut,
        ]),
      ),
    );
    return Object.fromEntries(checks.map((c, i) => [c.name, states[i] ?? "unavailable"]));
  } finally {
    clearTimeout(timer);
  }
}

/** The database answers `select 1` (PostgreSQL or PGlite). */
export function databaseCheck(db: { raw(sql: string): PromiseLike<unknown> }): ReadinessCheck {
  return { name: "database", check: async () => db.raw("select 1") };
}
