/**
 * Telemetry: the process reports what happens as events from one catalogue (events.ts), and
 * whoever cares attaches a handler. Logging (log-handler.ts) and Prometheus metrics (metrics.ts)
 * are two such handlers; nothing in the HTTP or realtime tiers logs requests or counts things
 * itself. The shape follows Erlang's :telemetry: `emit(event, measurements, metadata)`,
 * synchronous, and a handler that throws is detached (and reported) rather than allowed to
 * break the code that emitted. Tracing (tracing.ts, loaded only when configured) is one more
 * handler plus `span()`, which wraps the work a span must be active around (a request, a join, a
 * broadcast) so that the queries and publishes inside it become its children.
 *
 *     const telemetry = createTelemetry({ onHandlerError: (error) => logger.error({ err: error }, "telemetry handler detached") })
 *     const detach = telemetry.attach((e) => { if (e.event === "db.query.stop") console.log(e.measurements.duration_ms) })
 *     telemetry.emit("db.query.stop", { duration_ms: 1.2 }, { method: "select", outcome: "ok" })
 *     detach()
 */
import type { EventName, Measurements, Metadata, SpanName, SpanStarts, TelemetryEvent } from "./events.ts";

export { EVENT_NAMES } from "./events.ts";
export type {
  EventName,
  Measurements,
  Metadata,
  SpanName,
  SpanStarts,
  TelemetryEvent,
  TelemetryEvents,
} from "./events.ts";

/** Receives every event; switch on `event.event` to narrow the measurements and metadata. */
export type TelemetryHandler = (event: TelemetryEvent) => void;

export interface Telemetry {
  /** Reports an event to every attached handler, synchronously. Never throws. */
  emit<E extends EventName>(event: E, measurements: Measurements<E>, metadata: Metadata<E>): void;
  /** Attaches a handler; returns the function that detaches it. */
  attach(handler: TelemetryHandler): () => void;
  /**
   * Runs `fn` inside the span the tracer opens for `start` (see SpanStarts); without a tracer it
   * only calls `fn`. Returns what `fn` returns.
   *
   *     return telemetry.span("channel.event.start", { topic, event }, () => handleIn(joined, m))
   */
  span<S extends SpanName, R>(start: S, metadata: SpanStarts[S], fn: () => R): R;
  /** Whether a tracer is installed: hot paths skip building span metadata nobody reads. */
  tracing(): boolean;
  /** The active trace context as a W3C traceparent, to carry to other nodes; undefined without a tracer. */
  carry(): string | undefined;
  /** Installs the tracer (lib/telemetry/tracing.ts) and attaches its handler; returns the function that removes both. */
  trace(tracer: Tracer): () => void;
}

/** What tracing adds to telemetry; implemented only by lib/telemetry/tracing.ts, loaded only when tracing is on. */
export interface Tracer {
  span<S extends SpanName, R>(start: S, metadata: SpanStarts[S], fn: () => R): R;
  carry(): string | undefined;
  /** Sees every event: a `.stop` completes the span it closes, or is recorded as a span of its own. */
  handle: TelemetryHandler;
}

export interface TelemetryOptions {
  /** Told when a handler throws; the handler has been detached by then. */
  onHandlerError?: (error: unknown, handler: TelemetryHandler) => void;
}

export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  // Copy-on-write, so a handler that attaches or detaches during an emit never disturbs it.
  let handlers: readonly TelemetryHandler[] = [];
  let tracer: Tracer | undefined;
  const detach = (handler: TelemetryHandler) => {
    handlers = handlers.filter((h) => h !== handler);
  };
  const attach = (handler: TelemetryHandler) => {
    handlers = [...handlers, handler];
    return () => detach(handler);
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
    attach,
    span(start, metadata, fn) {
      return tracer === undefined ? fn() : tracer.span(start, metadata, fn);
    },
    tracing() {
      return tracer !== undefined;
    },
    carry() {
      return tracer?.carry();
    },
    trace(t) {
      tracer = t;
      const off = attach(t.handle);
      return () => {
        off();
        if (tracer === t) tracer = undefined;
      };
    },
  };
}
