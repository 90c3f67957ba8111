/**
 * The telemetry event catalogue: every event the process emits, its measurements (numbers) and
 * its metadata (labels). One declaration, read by the emitter's types, the log handler and the
 * metrics handler, so an event is never described twice and a misspelt one is a compile error.
 *
 * Names are dotted lowercase, `<thing>.<what happened>`; a `.stop` suffix means the event closes a
 * span and carries its `duration_ms` (as Phoenix's `[:phoenix, :endpoint, :stop]`).
 *
 * Metadata never carries a token, password, secret, request body or SQL bindings: handlers may
 * log any of it.
 */
import type { ApiVersion } from "../versions.ts";

export interface TelemetryEvents {
  /** An HTTP request was answered (errors included), emitted once per request. */
  "http.request.stop": {
    measurements: { duration_ms: number };
    metadata: {
      request_id: string;
      method: string;
      /** The request path without its query string. */
      path: string;
      /** The route pattern (`/users/:id`), never the raw path; `undefined` when no route matched. */
      route: string | undefined;
      status: number;
      /** The version served; `undefined` when none was negotiated (406, /health, /metrics…). */
      api_version: ApiVersion | undefined;
      user_id: number | undefined;
      /** The caller's pinned version; `undefined` without a live bearer token. */
      pinned_version?: ApiVersion | undefined;
      /** Set on a 410: the withdrawn version (sunset or browned out) the request asked for. */
      gone_version?: ApiVersion | undefined;
    };
  };
  /** A database query finished (its time on the connection, pool wait excluded). */
  "db.query.stop": {
    measurements: { duration_ms: number };
    /** `method` is knex's: select, insert, update, del, first, raw…; `operation` the SQL verb (INSERT…), never more of the SQL. */
    metadata: { method: string; outcome: "ok" | "error"; operation?: string | undefined };
  };
  /** A socket passed the handshake and is open. */
  "socket.open": {
    measurements: Record<string, never>;
    metadata: { api_version: ApiVersion; user_id: number };
  };
  /** A socket closed, for any reason. */
  "socket.close": {
    measurements: { duration_ms: number };
    metadata: { code: number; user_id: number | undefined; api_version: ApiVersion };
  };
  /** A `phx_join` was answered. */
  "channel.join.stop": {
    measurements: { duration_ms: number };
    metadata: { topic: string; outcome: "ok" | "error"; reason: string | undefined; user_id: number | undefined };
  };
  /** A socket left a topic: `phx_leave`, a rejoin replacing it, its socket closing, a crash, or shutdown. */
  "channel.leave": {
    measurements: Record<string, never>;
    /** The realtime tier's TerminateReason. */
    metadata: { topic: string; reason: "leave" | "rejoin" | "closed" | "crash" | "shutdown" | "evicted" };
  };
  /** A client frame (event) arrived on a joined topic. */
  "channel.message.in": {
    measurements: { bytes: number };
    metadata: { topic: string; event: string };
  };
  /** Frames written to one socket (replies and pushes), not counting broadcast fan-out. */
  "channel.message.out": {
    measurements: { count: number };
    metadata: { topic: string; event: string };
  };
  /** A broadcast reached `deliveries` local subscribers. */
  "broadcast.fanout": {
    measurements: { deliveries: number };
    metadata: { topic: string; event: string };
  };
  /** Presence entries (one per tracked socket and topic) were added or removed. */
  "presence.change": {
    measurements: { joins: number; leaves: number };
    metadata: { topic: string };
  };
  /** A publish to other nodes was dropped (adapter down or its buffer full); local delivery still happened. */
  "cluster.publish.dropped": {
    measurements: { count: number };
    metadata: { adapter: string; reason: string };
  };
  /** A message on a cluster Redis channel was not one this node understands: dropped, never delivered. */
  "cluster.message.invalid": {
    measurements: { count: number };
    /** `source`: the PubSub's topic channels or presence's diff channels; `reason` says what was wrong. */
    metadata: { source: "pubsub" | "presence"; reason: string };
  };
}

/**
 * Events that open a span. Only a tracer sees them (Telemetry.span); without one the wrapped work
 * just runs. Each span is closed when its work returns or settles; the `.stop` event emitted
 * inside it (`http.request.stop`, `channel.join.stop`, `broadcast.fanout`) completes its attributes.
 */
export interface SpanStarts {
  /** An HTTP request arrived; `traceparent`/`tracestate` are its W3C trace context headers, if any. */
  "http.request.start": {
    method: string;
    path: string;
    traceparent: string | undefined;
    tracestate: string | undefined;
  };
  /** A `phx_join` is being handled. */
  "channel.join.start": { topic: string; user_id: number };
  /** A client event on a joined topic is being handled. */
  "channel.event.start": { topic: string; event: string };
  /** A broadcast is published: delivered here, then sent to the other nodes. */
  "broadcast.publish.start": { topic: string; event: string };
  /** A broadcast is delivered on this node; `link` is its publisher's trace context (W3C traceparent). */
  "broadcast.deliver.start": { topic: string; event: string; link: string | undefined };
  /** A Redis command of a cluster adapter was sent: its name only (`PUBLISH`), never its arguments. */
  "redis.command.start": { command: string; connection: string };
}

export type SpanName = keyof SpanStarts;

export type EventName = keyof TelemetryEvents;
export type Measurements<E extends EventName> = TelemetryEvents[E]["measurements"];
export type Metadata<E extends EventName> = TelemetryEvents[E]["metadata"];

/** One emitted event, as handlers receive it: a union discriminated by `event`. */
export type TelemetryEvent = {
  [E in EventName]: { event: E; measurements: Measurements<E>; metadata: Metadata<E> };
}[EventName];

/** Every event name, in catalogue order (the `satisfies` keeps this list and the interface in step). */
export const EVENT_NAMES = [
  "http.request.stop",
  "db.query.stop",
  "socket.open",
  "socket.close",
  "channel.join.stop",
  "channel.leave",
  "channel.message.in",
  "channel.message.out",
  "broadcast.fanout",
  "presence.change",
  "cluster.publish.dropped",
  "cluster.message.invalid",
] as const satisfies readonly EventName[];

// A name in the interface but missing from the list fails here.
type Missing = Exclude<EventName, (typeof EVENT_NAMES)[number]>;
const everyEventListed: Missing extends never ? true : Missing = true;
void everyEventListed;
