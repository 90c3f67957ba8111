/**
 * Tracing: the OpenTelemetry SDK behind telemetry's `span()` / `carry()` and a handler of the event
 * catalogue. Imported only by lib/deps.ts, dynamically, when an OTLP endpoint is configured: with
 * tracing off not one module of the SDK is loaded.
 *
 *     const tracing = await startTracing(config.tracing)
 *     telemetry.trace(tracing.tracer)
 *     await tracing.shutdown()   // flushes what is still buffered
 *
 * - Spans are exported in batches over OTLP/HTTP (`http/protobuf` or `http/json`). The SDK reads
 *   the standard variables itself: OTEL_TRACES_SAMPLER(_ARG), OTEL_RESOURCE_ATTRIBUTES,
 *   OTEL_SERVICE_NAME (default here `hypercast`), OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*.
 * - Context lives in AsyncLocalStorage, so a query awaited inside a request is its child.
 * - Spans of a `span()` start event end when its work returns or settles; the matching `.stop`
 *   event completes them (status, route, outcome). A `db.query.stop` with no span of its own
 *   becomes a CLIENT span after the fact, from its measured duration.
 * - A broadcast is a PRODUCER span; each delivery (here, and on other nodes from the traceparent
 *   in the Redis envelope) is a CONSUMER span, child of and linked to it, counting its recipients.
 * - A query or a Redis command is a CLIENT span only inside a traced operation (migrations and
 *   background heartbeats are not traced).
 * - Attributes come from catalogue metadata, which never holds bodies, bindings or secrets.
 */
import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import type { TracingConfig } from "../config.ts";
import type { SpanName, SpanStarts, TelemetryEvent } from "./events.ts";
import type { Tracer } from "./index.ts";

export interface Tracing {
  readonly tracer: Tracer;
  /** For pino's `mixin`: `{trace_id, span_id}` of the active span, `{}` outside one. */
  logFields(): Record<string, string>;
  /** Exports every span ended so far. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

/** One context manager per process: AsyncLocalStorage carries the active span across awaits. */
let contextManagerInstalled = false;

/** `node`: NODE_NAME, exported as the resource attribute `hypercast.node` so a cluster's spans tell their node. */
export async function startTracing(config: TracingConfig, node: string | undefined): Promise<Tracing> {
  if (!contextManagerInstalled) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerInstalled = true;
  }
  const { OTLPTraceExporter } =
    config.protocol === "http/json"
      ? await import("@opentelemetry/exporter-trace-otlp-http")
      : await import("@opentelemetry/exporter-trace-otlp-proto");
  // Later resources win: the SDK's (telemetry.sdk.*), our default name, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "hypercast", "hypercast.node": node }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.url }))],
  });
  const tracer = createTracer(provider.getTracer("hypercast"));
  return {
    tracer,
    logFields(): Record<string, string> {
      const span = trace.getSpan(context.active());
      // A fresh object each time: pino merges the line's own fields into it.
      if (span === undefined) return {};
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

type OtelTracer = ReturnType<NodeTracerProvider["getTracer"]>;

/** What a span opened by `span()` remembers until it ends. */
interface Open {
  start: SpanName;
  /** Sockets written to by a delivery (or by this node's deliveries of a broadcast). */
  recipients: number;
  /** The local producer of a consumer span, so its recipients add up there too. */
  producer: Open | undefined;
  span: Span;
}

const propagator = new W3CTraceContextPropagator();

function createTracer(otel: OtelTracer): Tracer {
  const open = new WeakMap<Span, Open>();
  const active = (): Open | undefined => {
    const span = trace.getSpan(context.active());
    return span === undefined ? undefined : open.get(span);
  };

  return {
    span(start, metadata, fn) {
      // Heartbeats, reaps and other background commands would each be a trace of one span: trace
      // a Redis command only as part of an operation already traced.
      if (start === "redis.command.start" && trace.getSpan(context.active())?.isRecording() !== true) return fn();
      const parentOpen = active();
      const { name, kind, attributes, parent, links } = describe(start, metadata);
      const span = otel.startSpan(name, { kind, attributes, links }, parent);
      const state: Open = {
        start,
        recipients: 0,
        producer:
          start === "broadcast.deliver.start" && parentOpen?.start === "broadcast.publish.start"
            ? parentOpen
            : undefined,
        span,
      };
      open.set(span, state);
      const finish = (error?: unknown) => {
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        if (start === "broadcast.publish.start" || start === "broadcast.deliver.start")
          span.setAttribute("hypercast.recipients", state.recipients);
        span.end();
      };
      let result: ReturnType<typeof fn>;
      try {
        result = context.with(trace.setSpan(parent, span), fn);
      } catch (error) {
        finish(error);
        throw error;
      }
      if (!(result instanceof Promise)) {
        finish();
        return result;
      }
      return result.then(
        (value) => (finish(), value),
        (error: unknown) => {
          finish(error);
          throw error;
        },
      ) as typeof result;
    },
    carry() {
      const carrier: Record<string, string> = {};
      propagator.inject(context.active(), carrier, defaultTextMapSetter);
      return carrier["traceparent"];
    },
    handle(e) {
      complete(otel, active(), e);
    },
  };
}

interface SpanPlan {
  name: string;
  kind: SpanKind;
  attributes: Attributes;
  parent: Context;
  links: Link[];
}

/** Name, kind, attributes and parent of the span a start event opens. */
function describe<S extends SpanName>(start: S, metadata: SpanStarts[S]): SpanPlan {
  const m = metadata as SpanStarts[SpanName];
  const here = context.active();
  switch (start) {
    case "http.request.start": {
      const { method, path, traceparent, tracestate } = m as SpanStarts["http.request.start"];
      // An incoming traceparent continues the caller's trace; a malformed one is ignored.
      const parent =
        traceparent === undefined
          ? here
          : propagator.extract(ROOT_CONTEXT, { traceparent, tracestate }, defaultTextMapGetter);
      return {
        name: method,
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": method, "url.path": path, "url.scheme": "http" },
        parent,
        links: [],
      };
    }
    case "channel.join.start": {
      const { topic, user_id } = m as SpanStarts["channel.join.start"];
      return {
        name: `phx_join ${template(topic)}`,
        kind: SpanKind.SERVER,
        attributes: { ...channel(topic), "hypercast.user_id": user_id },
        parent: here,
        links: [],
      };
    }
    case "channel.event.start": {
      const { topic, event } = m as SpanStarts["channel.event.start"];
      return {
        name: `${event} ${template(topic)}`,
        kind: SpanKind.SERVER,
        attributes: { ...channel(topic), "hypercast.event": event },
        parent: here,
        links: [],
      };
    }
    case "broadcast.publish.start": {
      const { topic, event } = m as SpanStarts["broadcast.publish.start"];
      return {
        name: `publish ${template(topic)}`,
        kind: SpanKind.PRODUCER,
        attributes: messaging(topic, event, "send", "publish"),
        parent: here,
        links: [],
      };
    }
    case "broadcast.deliver.start": {
      const { topic, event, link } = m as SpanStarts["broadcast.deliver.start"];
      const attributes = messaging(topic, event, "process", "process");
      const from =
        link === undefined
          ? undefined
          : trace.getSpanContext(propagator.extract(ROOT_CONTEXT, { traceparent: link }, defaultTextMapGetter));
      if (from === undefined)
        return { name: `process ${template(topic)}`, kind: SpanKind.CONSUMER, attributes, parent: here, links: [] };
      // Child of the publish (one trace per write, across nodes) and linked to it, as messaging conventions ask.
      return {
        name: `process ${template(topic)}`,
        kind: SpanKind.CONSUMER,
        attributes,
        parent: trace.setSpanContext(ROOT_CONTEXT, from),
        links: [{ context: from }],
      };
    }
    case "redis.command.start": {
      const { command, connection } = m as SpanStarts["redis.command.start"];
      const operation = command.toUpperCase();
      return {
        name: operation,
        kind: SpanKind.CLIENT,
        attributes: {
          "db.system.name": "redis",
          "db.operation.name": operation,
          "hypercast.redis.connection": connection,
        },
        parent: here,
        links: [],
      };
    }
  }
  const unknown: never = start;
  throw new Error(`no span for start event ${JSON.stringify(unknown)}`);
}

/** Applies a `.stop` event to the span it closes, or records it as a span of its own. */
function complete(otel: OtelTracer, current: Open | undefined, e: TelemetryEvent): void {
  switch (e.event) {
    case "http.request.stop": {
      if (current?.start !== "http.request.start") return;
      const { method, route, status, api_version } = e.metadata;
      const httpRoute = route === undefined ? undefined : route.replace(/:(\w+)/g, "{$1}");
      current.span.updateName(httpRoute === undefined ? method : `${method} ${httpRoute}`);
      current.span.setAttributes({
        "http.response.status_code": status,
        "http.route": httpRoute,
        "hypercast.api_version": api_version,
        "hypercast.request_id": e.metadata.request_id,
      });
      // A server error: the span's status, and `error.type` the status code (HTTP semantic conventions).
      if (status >= 500) {
        current.span.setStatus({ code: SpanStatusCode.ERROR });
        current.span.setAttribute("error.type", String(status));
      }
      return;
    }
    case "channel.join.stop": {
      if (current?.start !== "channel.join.start") return;
      current.span.setAttributes({ "hypercast.outcome": e.metadata.outcome, "hypercast.reason": e.metadata.reason });
      if (e.metadata.outcome === "error")
        current.span.setStatus({ code: SpanStatusCode.ERROR, message: e.metadata.reason ?? "error" });
      return;
    }
    case "broadcast.fanout": {
      if (current?.start !== "broadcast.deliver.start") return;
      current.recipients += e.measurements.deliveries;
      if (current.producer !== undefined) current.producer.recipients += e.measurements.deliveries;
      return;
    }
    case "db.query.stop": {
      // As Redis commands: a query outside any traced operation (migrations, background work) is not a
      // trace of its own; inside an unsampled one it would be dropped anyway, so it is not even made.
      if (trace.getSpan(context.active())?.isRecording() !== true) return;
      const end = performance.timeOrigin + performance.now();
      const operation = e.metadata.operation ?? SQL_OPERATIONS[e.metadata.method];
      const span = otel.startSpan(
        operation ?? "postgresql",
        {
          kind: SpanKind.CLIENT,
          startTime: end - e.measurements.duration_ms,
          attributes: { "db.system.name": "postgresql", "db.operation.name": operation },
        },
        context.active(),
      );
      if (e.metadata.outcome === "error") span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(end);
      return;
    }
    default:
      return;
  }
}

/** knex's query methods as SQL operations; `raw` queries are left unnamed. */
const SQL_OPERATIONS: Readonly<Record<string, string>> = {
  select: "SELECT",
  first: "SELECT",
  pluck: "SELECT",
  insert: "INSERT",
  update: "UPDATE",
  del: "DELETE",
  delete: "DELETE",
  upsert: "INSERT",
  truncate: "TRUNCATE",
};

/** `room:42` → `room:*`: span names stay few; the topic itself is an attribute. */
function template(topic: string): string {
  const colon = topic.indexOf(":");
  return colon === -1 ? topic : `${topic.slice(0, colon)}:*`;
}

function channel(topic: string): Attributes {
  return { "hypercast.channel.topic": topic };
}

function messaging(topic: string, event: string, type: "send" | "process", operation: string): Attributes {
  return {
    "messaging.system": "hypercast",
    "messaging.operation.type": type,
    "messaging.operation.name": operation,
    "messaging.destination.name": topic,
    "messaging.destination.template": template(topic),
    "hypercast.event": event,
  };
}
