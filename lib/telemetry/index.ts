/**
 * Telemetry: the process reports what happens as events from one catalogue (events.ts), and
 * whoever cares attaches a handler. Logging (log-handler.ts) and Prometheus metrics (metrics.ts)
 * are two such handlers; nothing in the HTTP or realtime tiers logs requests or counts things
 * itself. The shape follows Erlang's :telemetry: `emit(event, measurements, metadata)`,
 * synchronous, and a handler that throws is detached (and reported) rather than allowed to
 * break the code that emitted.
 *
 *     const telemetry = createTelemetry({ onHandlerError: (error) => logger.error({ err: error }, "telemetry handler detached") })
 *     const detach = telemetry.attach((e) => { if (e.event === "db.query.stop") console.log(e.measurements.duration_ms) })
 *     telemetry.emit("db.query.stop", { duration_ms: 1.2 }, { method: "select", outcome: "ok" })
 *     detach()
 */
import type { EventName, Measurements, Metadata, TelemetryEvent } from "./events.ts";

export { EVENT_NAMES } from "./events.ts";
export type { EventName, Measurements, Metadata, TelemetryEvent, TelemetryEvents } from "./events.ts";

/** Receives every event; switch on `event.event` to narrow the measurements and metadata. */
export type TelemetryHandler = (event: TelemetryEvent) => void;

export interface Telemetry {
  /** Reports an event to every attached handler, synchronously. Never throws. */
  emit<E extends EventName>(event: E, measurements: Measurements<E>, metadata: Metadata<E>): void;
  /** Attaches a handler; returns the function that detaches it. */
  attach(handler: TelemetryHandler): () => void;
}

export interface TelemetryOptions {
  /** Told when a handler throws; the handler has been detached by then. */
  onHandlerError?: (error: unknown, handler: TelemetryHandler) => void;
}

export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  // Copy-on-write, so a handler that attaches or detaches during an emit never disturbs it.
  let handlers: readonly TelemetryHandler[] = [];
  const detach = (handler: TelemetryHandler) => {
    handlers = handlers.filter((h) => h !== handler);
  };
  return {
    emit(event, measurements, metadata) {
      if (handlers.length === 0) return;
      const payload = { event, measurements, metadata } as TelemetryEvent;
      for (const handler of handlers) {
        try {
          handler(payload);
        } catch (error) {
          // A broken handler must not fail a request or a socket: drop it, say so once.
          detach(handler);
          options.onHandlerError?.(error, handler);
        }
      }
    },
    attach(handler) {
      handlers = [...handlers, handler];
      return () => detach(handler);
    },
  };
}
