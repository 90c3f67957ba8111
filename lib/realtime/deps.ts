/**
 * What the realtime tier is given: the parts of the process's services (lib/deps.ts) it uses, and
 * nothing else. The HTTP tier has its own (lib/http/deps.ts); neither sees the other's.
 *
 *     startRealtime(deps, { host, port })   // a Deps is a RealtimeDeps: the type keeps the tier narrow
 */
import type { Deps } from "../deps.ts";

export type RealtimeDeps = Pick<
  Deps,
  | "config"
  | "logger"
  | "clock"
  | "telemetry"
  | "pubsub"
  | "presence"
  | "accounts"
  | "rooms"
  | "socketQuota"
  | "dashboard"
>;
