/**
 * The PubSub event catalogue: every domain event published between the contexts and whoever
 * listens (on this node, and on the others through the cluster), with its payload type. One
 * declaration, read by `PubSub`'s types (a misspelt event or a wrong payload is a compile error,
 * and a subscriber narrowing on `message.event` gets the payload typed) and by the Redis adapter,
 * which checks every payload received from another node here, once, before anything delivers it.
 *
 * Names are domain events, dotted lowercase like the telemetry catalogue's (`message.created`),
 * never wire events: how a socket sees one (`message:new`) is the channel's rendering
 * (lib/realtime/channels/room-channel.ts).
 *
 *     pubsub.broadcast(roomTopic(1), "message.created", message) // payload: Message
 *     pubsub.subscribe(topic, (m) => { if (m.event === "message.created") m.payload.body })
 *     checkPayload("message.created", decoded)                    // undefined, or why not
 */
import type { PinChanged, SessionsRevoked } from "../accounts/index.ts";
import type { NodeSnapshot } from "../dashboard/snapshot.ts";
import type { AccessEnded, Message } from "../rooms/index.ts";

export type PubSubEvents = {
  /** A message was stored in a room (rooms.createMessage), on the room's topic. */
  "message.created": Message;
  /** Someone lost read access to a room (member removed, room deleted), on `rooms:access`. */
  "room.access.ended": AccessEnded;
  /** Sessions were revoked (log-out, password change, user deleted), on `accounts:revocations`. */
  "sessions.revoked": SessionsRevoked;
  /** A user's pinned API version changed (PATCH /users/{id}), on `accounts:pins`. */
  "user.pin.changed": PinChanged;
  /** One node's dashboard reading, every DASHBOARD_INTERVAL_MS, on `admin:dashboard`. */
  "dashboard.snapshot": NodeSnapshot;
};

export type PubSubEvent = keyof PubSubEvents;

/** Whether a payload decoded from another node is what its event promises (Dates already revived by ../cluster/json.ts). */
const PAYLOAD_CHECKS: { [E in PubSubEvent]: (payload: unknown) => payload is PubSubEvents[E] } = {
  "message.created": (p): p is Message => {
    const m = p as Partial<Message> | null;
    return (
      isObject(m) &&
      isInteger(m.id) &&
      isInteger(m.roomId) &&
      typeof m.body === "string" &&
      isDate(m.insertedAt) &&
      isObject(m.author) &&
      isInteger(m.author.id) &&
      typeof m.author.name === "string"
    );
  },
  "room.access.ended": (p): p is AccessEnded => {
    const a = p as Partial<AccessEnded> | null;
    return (
      isObject(a) &&
      isInteger(a.roomId) &&
      (a.userId === null || isInteger(a.userId)) &&
      (a.reason === "removed" || a.reason === "deleted")
    );
  },
  "sessions.revoked": (p): p is SessionsRevoked => {
    const r = p as Partial<SessionsRevoked> | null;
    return isObject(r) && Array.isArray(r.sessionIds) && r.sessionIds.every(isInteger) && isDate(r.revokedAt);
  },
  "user.pin.changed": (p): p is PinChanged => {
    const c = p as Partial<PinChanged> | null;
    // Any positive version: a node running newer code may pin to a version this one lacks (it then ignores it).
    return isObject(c) && isInteger(c.userId) && isInteger(c.apiVersion) && c.apiVersion > 0 && isDate(c.changedAt);
  },
  "dashboard.snapshot": isNodeSnapshot,
};

/**
 * Why a payload received from another node cannot be delivered under `event`, or undefined when it
 * can: `unknown event "x"` (a node of another version), or `malformed "message.created" payload`.
 */
export function checkPayload(event: string, payload: unknown): string | undefined {
  if (!Object.hasOwn(PAYLOAD_CHECKS, event)) return `unknown event ${JSON.stringify(event)}`;
  return PAYLOAD_CHECKS[event as PubSubEvent](payload) ? undefined : `malformed ${JSON.stringify(event)} payload`;
}

/**
 * Every field the page reads, with its type, and bounded tables: a snapshot from a node of another
 * version or a buggy one is dropped here (and counted as `cluster.message.invalid`) instead of
 * reaching the pages, where a missing figure would break the rendering of every node's.
 */
function isNodeSnapshot(p: unknown): p is NodeSnapshot {
  if (!isObject(p)) return false;
  const s = p as Record<keyof NodeSnapshot, unknown>;
  return (
    isText(s.node) &&
    isFigure(s.at) &&
    isFigure(s.interval_ms) &&
    (s.interval_ms as number) > 0 &&
    isText(s.version) &&
    isText(s.node_version) &&
    isFigure(s.uptime_s) &&
    isFigure(s.build_ms) &&
    hasFigures(s.http, ["rps", "p50_ms", "p99_ms", "client_errors_per_s", "server_errors_per_s"]) &&
    isObject((s.http as Record<string, unknown>)["by_version"]) &&
    Object.keys((s.http as { by_version: object }).by_version).length <= 16 &&
    Object.values((s.http as { by_version: object }).by_version).every(isFigure) &&
    isList(
      s.callers,
      16,
      (group) =>
        hasFigures(group, ["version", "window_s", "requests", "anonymous"]) &&
        isList((group as Record<string, unknown>)["callers"], 1000, (c) =>
          hasFigures(c, ["user_id", "requests", "error"]),
        ),
    ) &&
    hasFigures(s.sockets, [
      "open",
      "joins_per_s",
      "join_errors_per_s",
      "messages_in_per_s",
      "deliveries_per_s",
      "slow_consumer_disconnects",
    ]) &&
    hasFigures(s.topics, ["count"]) &&
    isList(
      (s.topics as Record<string, unknown>)["top"],
      100,
      (row) =>
        hasFigures(row, ["subscribers", "presences", "rate"]) &&
        isText((row as Record<string, unknown>)["topic"], 65_536),
    ) &&
    hasFigures(s.db, ["queries_per_s", "p50_ms", "p99_ms", "errors_per_s"]) &&
    (["in_use", "free", "waiting"] as const).every((k) => {
      const v = (s.db as Record<string, unknown>)[k];
      return v === null || isFigure(v);
    }) &&
    isObject(s.redis) &&
    ["off", "ok", "down"].includes(s.redis["status"] as string) &&
    (s.redis["ping_ms"] === null || isFigure(s.redis["ping_ms"])) &&
    hasFigures(s.process, [
      "rss_bytes",
      "heap_used_bytes",
      "heap_total_bytes",
      "cpu_percent",
      "loop_p99_ms",
      "loop_max_ms",
    ])
  );
}

/** A finite number (JSON has no NaN or Infinity, but a node of another version may send a string). */
function isFigure(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isText(value: unknown, most = 256): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= most;
}

function hasFigures(value: unknown, keys: readonly string[]): boolean {
  return isObject(value) && keys.every((k) => isFigure(value[k]));
}

function isList(value: unknown, most: number, each: (item: unknown) => boolean): boolean {
  return Array.isArray(value) && value.length <= most && value.every(each);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isInteger(value: unknown): value is number {
  return Number.isSafeInteger(value);
}

function isDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}
