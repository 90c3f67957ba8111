/**
 * Logging as a telemetry handler: each catalogue event becomes at most one JSON line, at a level
 * chosen here (requests at info, queries and socket life at debug, per-frame events at trace,
 * dropped cluster publishes at warn). Events carry no secrets by contract (events.ts), and the
 * handler writes only an event's catalogue fields (a request line names each of its fields), never
 * whole objects from elsewhere.
 *
 *     telemetry.attach(logEvents(logger))
 *     // {"level":30,"msg":"request","request_id":"…","method":"GET","route":"/users/:id","status":200,…}
 */
import type { Level, Logger } from "pino";
import type { EventName, TelemetryEvent } from "./events.ts";
import type { TelemetryHandler } from "./index.ts";

/** The level each event logs at. */
export const EVENT_LOG_LEVELS = {
  "http.request.stop": "info",
  "db.query.stop": "debug",
  "socket.open": "debug",
  "socket.close": "debug",
  "channel.join.stop": "debug",
  "channel.leave": "debug",
  "channel.message.in": "trace",
  "channel.message.out": "trace",
  "broadcast.fanout": "trace",
  "presence.change": "trace",
  "cluster.publish.dropped": "warn",
  "cluster.message.invalid": "warn",
} as const satisfies Record<EventName, Level>;

/** Probes and scrapes arrive every few seconds; their request lines go to debug, not info. */
const QUIET_ROUTES: ReadonlySet<string | undefined> = new Set(["/health", "/ready", "/metrics"]);

export function logEvents(logger: Logger): TelemetryHandler {
  // Which levels are on, read again whenever a level changes at run time (pino's `level-change`,
  // which a parent's change raises too): most events are below the level, and asking pino for each
  // one showed in the profile of a join (benchmarks/NOTES.md, bench:joins).
  let enabled = enabledLevels(logger);
  logger.on("level-change", () => (enabled = enabledLevels(logger)));
  return function logEvent(e) {
    const quiet = e.event === "http.request.stop" && e.metadata.status < 500 && QUIET_ROUTES.has(e.metadata.route);
    const level = quiet ? "debug" : EVENT_LOG_LEVELS[e.event];
    if (!enabled.has(level)) return;
    logger[level](fields(e), message(e));
  };
}

function enabledLevels(logger: Logger): ReadonlySet<Level> {
  return new Set(LOG_LEVELS.filter((level) => logger.isLevelEnabled(level)));
}

const LOG_LEVELS: readonly Level[] = ["fatal", "error", "warn", "info", "debug", "trace"];

function message(e: TelemetryEvent): string {
  return e.event === "http.request.stop" ? "request" : e.event;
}

/** Flat fields: measurements first, then metadata, as log pipelines index them. */
function fields(e: TelemetryEvent): Record<string, unknown> {
  if (e.event === "http.request.stop") {
    const m = e.metadata;
    // Named one by one so that a field added to the event later is not logged by accident.
    return {
      request_id: m.request_id,
      method: m.method,
      path: m.path,
      route: m.route,
      status: m.status,
      api_version: m.api_version,
      user_id: m.user_id,
      duration_ms: round(e.measurements.duration_ms),
    };
  }
  const measurements: Record<string, number> = {};
  for (const [name, value] of Object.entries(e.measurements))
    measurements[name] = name === "duration_ms" ? round(value) : value;
  // The event's name is the line's `msg`; a metadata `event` (a channel event name) keeps its own meaning.
  return { ...measurements, ...e.metadata };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
