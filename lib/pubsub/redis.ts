/**
 * The Redis PubSub adapter: every process pointing at the same Redis
 * sees every other one's broadcasts. Local delivery stays in the core (lib/pubsub/index.ts),
 * synchronous and in order; this adapter only carries messages between nodes. The design and
 * its guarantees: docs/cluster.md ("Broadcasts").
 *
 *     const pubsub = await createRedisPubSub({ url: "redis://127.0.0.1:6379", name: "n1", onDrop: count })
 *     pubsub.subscribe("room:1", handler)       // SUBSCRIBE rt:hypercast:t:room:1 (first local subscriber)
 *     pubsub.broadcast("room:1", "message.created", message) // local handlers now, then one PUBLISH
 *     await pubsub.ping()                       // readiness: both connections answer
 *     await pubsub.close()
 *
 * - One Redis channel per topic, `rt:<prefix>:t:<topic>`, subscribed while this node has local
 *   subscribers (ref-counted by the core) and unsubscribed `lingerMs` after the last one left.
 * - Envelope `{v:1, node, mode:"except", topic, event, payload, from?, trace?}` encoded by
 *   ../cluster/json.ts (a Date in a payload arrives as a Date). A node drops its own echoes (`node`
 *   is itself). `trace` (the publisher's traceparent, only while tracing) is optional both ways.
 * - What another node sends is checked here, once, before any subscriber sees it: the envelope,
 *   then the payload against its event in the catalogue (./events.ts `checkPayload`). A message
 *   that fails either is dropped and reported (`onInvalid`), so subscribers trust their types.
 * - One publisher connection, so every other node sees this node's messages on a topic in publish
 *   order; one subscriber connection. At most once: while Redis is away a publish is dropped and
 *   counted (`onDrop`, `dropped()`), never queued; ioredis re-subscribes every channel on reconnect.
 */
import type { Redis } from "ioredis";
import { createNodeId } from "../cluster/node-id.ts";
import { decode, encode } from "../cluster/json.ts";
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import type { Telemetry } from "../telemetry/index.ts";
import { checkPayload } from "./events.ts";
import {
  createPubSub,
  type EventMap,
  type PubSub,
  type PubSubAdapter,
  type PubSubEvents,
  type PubSubMessage,
} from "./index.ts";

export interface RedisPubSubOptions {
  url: string;
  /** Node name (default: the host name); the node id adds pid, start time and randomness. */
  name?: string;
  /** Namespace of every channel: `rt:<prefix>:…` (default "hypercast"); tests use one per run. */
  prefix?: string;
  /** How long a topic stays subscribed after its last local subscriber left (default 30000; tests 0). */
  lingerMs?: number;
  /** Called for every cross-node publish that could not be sent; local delivery already happened. */
  onDrop?: (reason: DropReason, message: PubSubMessage<EventMap>) => void;
  /** Redis connection errors (they repeat while Redis is away). */
  onError?: (error: Error) => void;
  /** Undecodable or foreign messages received (a node of another version). */
  onInvalid?: (channel: string, reason: string) => void;
  /** Traces publishes and deliveries (lib/pubsub/index.ts). */
  telemetry?: Telemetry;
  /**
   * Why a payload received from another node may not be delivered under its event, or undefined
   * (default: the catalogue's `checkPayload`; the contract suite, with events of its own, accepts all).
   */
  check?: (event: string, payload: unknown) => string | undefined;
}

/** `unavailable`: Redis not connected; `error`: Redis refused or the link broke mid-command; `encode`: not JSON-encodable. */
export type DropReason = "unavailable" | "error" | "encode";

export interface RedisPubSub<M extends EventMap = PubSubEvents> extends PubSub<M> {
  readonly nodeId: string;
  /** Channel of a topic, for tests and operators: `rt:<prefix>:t:<topic>`. */
  channel(topic: string): string;
  /** Resolves when both connections answer PING; rejects otherwise. */
  ping(): Promise<void>;
  /** "ok" while both connections are up (no round trip: for /health and metrics). */
  health(): "ok" | "unavailable";
  /** Resolves once every SUBSCRIBE/UNSUBSCRIBE issued so far is acknowledged by Redis. */
  synced(): Promise<void>;
  /** Cross-node publishes dropped since start. */
  dropped(): number;
}

export const ENVELOPE_VERSION = 1;

interface Envelope {
  v: number;
  node: string;
  mode: "except";
  topic: string;
  event: string;
  payload: unknown;
  from?: string;
  trace?: string;
}

export async function createRedisPubSub<M extends EventMap = PubSubEvents>(
  options: RedisPubSubOptions,
): Promise<RedisPubSub<M>> {
  const nodeId = createNodeId(options.name);
  const prefix = `rt:${options.prefix ?? "hypercast"}:t:`;
  const lingerMs = options.lingerMs ?? 30_000;
  const onError = options.onError ?? (() => {});
  const connections = await Promise.allSettled([
    connectRedis(options.url, {
      role: "publisher",
      name: `hypercast:pub:${nodeId}`,
      onError,
      telemetry: options.telemetry,
    }),
    connectRedis(options.url, {
      role: "subscriber",
      name: `hypercast:sub:${nodeId}`,
      onError,
      telemetry: options.telemetry,
    }),
  ]);
  const [pub, sub] = connections.map((c) => (c.status === "fulfilled" ? c.value : undefined));
  if (pub === undefined || sub === undefined) {
    await Promise.all([pub, sub].map((r) => (r === undefined ? undefined : closeRedis(r))));
    throw connections.find((c) => c.status === "rejected")?.reason;
  }
  let adapter: RedisAdapter<M> | undefined;
  const pubsub = createPubSub<M>(
    (deliver) => (adapter = createRedisAdapter<M>({ nodeId, prefix, lingerMs, pub, sub, deliver, options })),
    options.telemetry,
  );
  const a = adapter!;
  return {
    ...pubsub,
    nodeId,
    channel: (topic) => prefix + topic,
    async ping() {
      // The subscriber queues commands while away; fail fast instead of waiting for Redis.
      if (pub.status !== "ready" || sub.status !== "ready")
        throw new Error(`Redis is not connected (publisher ${pub.status}, subscriber ${sub.status})`);
      await Promise.all([pub.ping(), sub.ping()]);
    },
    health: () => (pub.status === "ready" && sub.status === "ready" ? "ok" : "unavailable"),
    synced: a.synced,
    dropped: a.dropped,
  };
}

interface RedisAdapter<M extends EventMap> extends PubSubAdapter<M> {
  synced(): Promise<void>;
  dropped(): number;
}

interface AdapterParts<M extends EventMap> {
  nodeId: string;
  prefix: string;
  lingerMs: number;
  pub: Redis;
  sub: Redis;
  deliver: (message: PubSubMessage<M>) => void;
  options: RedisPubSubOptions;
}

function createRedisAdapter<M extends EventMap>({
  nodeId,
  prefix,
  lingerMs,
  pub,
  sub,
  deliver,
  options,
}: AdapterParts<M>): RedisAdapter<M> {
  const lingering = new Map<string, NodeJS.Timeout>();
  /** Topics whose channel this node has asked to be subscribed to. */
  const subscribed = new Set<string>();
  let pending: Promise<unknown> = Promise.resolve();
  let dropped = 0;
  let closing = false;

  const invalid = options.onInvalid ?? (() => {});
  const check = options.check ?? checkPayload;
  function drop(reason: DropReason, message: PubSubMessage<M>): void {
    dropped += 1;
    options.onDrop?.(reason, message);
  }

  // Commands on one connection complete in order, so chaining on the last one is enough.
  function track(command: Promise<unknown>): void {
    pending = command.catch(() => {});
  }

  sub.on("messageBuffer", (channelBuffer: Buffer, data: Buffer) => {
    const channel = channelBuffer.toString();
    if (!channel.startsWith(prefix)) return;
    let envelope: Envelope;
    try {
      envelope = decode(data.toString()) as Envelope;
    } catch {
      return invalid(channel, "not JSON");
    }
    if (typeof envelope !== "object" || envelope === null || envelope.v !== ENVELOPE_VERSION)
      return invalid(channel, `unknown envelope version`);
    if (envelope.node === nodeId) return; // our own echo: the core delivered it already
    if (
      typeof envelope.topic !== "string" ||
      typeof envelope.event !== "string" ||
      envelope.topic !== channel.slice(prefix.length)
    ) {
      return invalid(channel, "malformed envelope");
    }
    if (envelope.from !== undefined && typeof envelope.from !== "string") return invalid(channel, "malformed envelope");
    const refused = check(envelope.event, envelope.payload);
    if (refused !== undefined) return invalid(channel, refused);
    // A node keeps receiving during UNSUBSCRIBE's round trip and the linger; the core finds no handler then.
    const message: { topic: string; event: string; payload: unknown; from?: string; trace?: string } = {
      topic: envelope.topic,
      event: envelope.event,
      payload: envelope.payload,
    };
    if (envelope.from !== undefined) message.from = envelope.from;
    if (typeof envelope.trace === "string") message.trace = envelope.trace;
    try {
      deliver(message as PubSubMessage<M>); // checked above
    } catch (error) {
      // A subscriber that throws on a checked payload: this handler runs inside ioredis's reply
      // parser, where a throw would break the connection.
      invalid(channel, `a subscriber refused the payload: ${(error as Error).message}`);
    }
  });

  return {
    interest(topic) {
      const timer = lingering.get(topic);
      if (timer !== undefined) {
        clearTimeout(timer);
        lingering.delete(topic);
      }
      if (subscribed.has(topic) || closing) return;
      subscribed.add(topic);
      track(sub.subscribe(prefix + topic));
    },
    disinterest(topic) {
      if (!subscribed.has(topic) || lingering.has(topic)) return;
      const leave = () => {
        lingering.delete(topic);
        subscribed.delete(topic);
        if (!closing) track(sub.unsubscribe(prefix + topic));
      };
      if (lingerMs <= 0) return leave();
      const timer = setTimeout(leave, lingerMs);
      timer.unref();
      lingering.set(topic, timer);
    },
    publish(message) {
      if (closing) return;
      let text: string;
      try {
        const envelope: Envelope = {
          v: ENVELOPE_VERSION,
          node: nodeId,
          mode: "except",
          topic: message.topic,
          event: message.event,
          payload: message.payload,
        };
        if (message.from !== undefined) envelope.from = message.from;
        if (message.trace !== undefined) envelope.trace = message.trace;
        text = encode(envelope);
      } catch {
        return drop("encode", message);
      }
      if (pub.status !== "ready") return drop("unavailable", message);
      pub.publish(prefix + message.topic, text).catch(() => drop("error", message));
    },
    async close() {
      closing = true;
      for (const timer of lingering.values()) clearTimeout(timer);
      lingering.clear();
      subscribed.clear();
      await Promise.all([closeRedis(pub), closeRedis(sub)]);
    },
    async synced() {
      let last: Promise<unknown>;
      do {
        last = pending;
        await last;
      } while (last !== pending);
    },
    dropped: () => dropped,
  };
}
