/**
 * What the HTTP tier is given: the parts of the process's services (lib/deps.ts) it uses, and
 * nothing else. The realtime tier has its own (lib/realtime/deps.ts); neither sees the other's.
 *
 *     buildApp(deps, { socketUrl })   // a Deps is an HttpDeps: pass it whole, the type keeps the tier narrow
 */
import type { Deps } from "../deps.ts";

export type HttpDeps = Pick<
  Deps,
  | "config"
  | "logger"
  | "clock"
  | "telemetry"
  | "metrics"
  | "db"
  | "cluster"
  | "accounts"
  | "rooms"
  | "presence"
  | "idempotency"
  | "limiter"
>;
