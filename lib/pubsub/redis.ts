/**
 * The Redis PubSub adapter: every process pointing at the same Redis
 * sees every other one's broadcasts. Local delivery stays in the core (lib/pubsub/index.ts),
 * synchronous and in order; this adapter only carries messages between nodes.
 *
 *     const pubsub = await createRedisPubSub({ url: "redis://127.0.0.1:6379", name: "n1", onDrop: count })
 *     pubsub.subscribe("room:1", handler)       // SUBSCRIBE rt:hypercast:t:room:1 (first local subscriber)
 *     pubsub.broadcast("room:1", "message:new", message) // local handlers now, then one PUBLISH
 *     await pubsub.ping()                       // readiness: both connections answer
 *     await pubsub.close()
 *
 * - One Redis channel per topic, `rt:<prefix>:t:<topic>`, subscribed while this node has local
 *   subscribers (ref-counted by the core) and unsubscribed `lingerMs` after the last one left.
 * - Envelope `{v:1, node, mode:"except", topic, event, payload, from?}` encoded by ../cluster/json.ts
 *   (a Date in a payload arrives as a Date). A node drops its own echoes (`node` is itself).
 * - One publisher connection, so every other node sees this node's messages on a topic in publish
 *   order; one subscriber connection. At most once: while Redis is away a publish is dropped and
 *   counted (`onDrop`, `dropped()`), never queued; ioredis re-subscribes every channel on reconnect.
 */
import type { Redis } from "ioredis";
import { createNodeId } from "../cluster/node-id.ts";
import { decode, encode } from "../cluster/json.ts";
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import { createPubSub, type PubSub, type PubSubAdapter, type PubSubMessage } from "./index.ts";

export interface RedisPubSubOptions {
  url: string;
  /** Node name (default: the host name); the node id adds pid, start time and randomness. */
  name?: string;
  /** Namespace of every channel: `rt:<prefix>:…` (default "hypercast"); tests use one per run. */
  prefix?: string;
  /** How long a topic stays subscribed after its last local subscriber left (default 30000; tests 0). */
  lingerMs?: number;
  /** Called for every cross-node publish that could not be sent; local delivery already happened. */
  onDrop?: (reason: DropReason, message: PubSubMessage) => void;
  /** Redis connection errors (they repeat while Redis is away). */
  onError?: (error: Error) => void;
  /** Undecodable or foreign messages received (a node of another version). */
  onInvalid?: (channel: string, reason: string) => void;
}

/** `unavailable`: Redis not connected; `error`: Redis refused or the link broke mid-command; `encode`: not JSON-encodable. */
export type DropReason = "unavailable" | "error" | "encode";

export interface RedisPubSub extends PubSub {
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
}

export async function createRedisPubSub(options: RedisPubSubOptions): Promise<RedisPubSub> {
  const nodeId = createNodeId(options.name);
  const prefix = `rt:${options.prefix ?? "hypercast"}:t:`;
  const lingerMs = options.lingerMs ?? 30_000;
  const onError = options.onError ?? (() => {});
  const connections = await Promise.allSettled([
    connectRedis(options.url, { role: "publisher", name: `hypercast:pub:${nodeId}`, onError }),
    connectRedis(options.url, { role: "subscriber", name: `hypercast:sub:${nodeId}`, onError }),
  ]);
  const [pub, sub] = connections.map((c) => (c.status === "fulfilled" ? c.value : undefined));
  if (pub === undefined || sub === undefined) {
    await Promise.all([pub, sub].map((r) => (r === undefined ? undefined : closeRedis(r))));
    throw connections.find((c) => c.status === "rejected")?.reason;
  }
  let adapter: RedisAdapter | undefined;
  const pubsub = createPubSub((deliver) => (adapter = createRedisAdapter({ nodeId, prefix, lingerMs, pub, sub, deliver, options })));
  const a = adapter!;
  return {
    ...pubsub,
    nodeId,
    channel: (topic) => prefix + topic,
    async ping() {
      // The subscriber queues commands while away; fail fast instead of waiting for Redis.
      if (pub.status !== "ready" || sub.status !== "ready") throw new Error(`Redis is not connected (publisher ${pub.status}, subscriber ${sub.status})`);
      await Promise.all([pub.ping(), sub.ping()]);
    },
    health: () => (pub.status === "ready" && sub.status === "ready" ? "ok" : "unavailable"),
    synced: a.synced,
    dropped: a.dropped,
  };
}

interface RedisAdapter extends PubSubAdapter {
  synced(): Promise<void>;
  dropped(): number;
}

interface AdapterParts {
  nodeId: string;
  prefix: string;
  lingerMs: number;
  pub: Redis;
  sub: Redis;
  deliver: (message: PubSubMessage) => void;
  options: RedisPubSubOptions;
}

function createRedisAdapter({ nodeId, prefix, lingerMs, pub, sub, deliver, options }: AdapterParts): RedisAdapter {
  const lingering = new Map<string, NodeJS.Timeout>();
  /** Topics whose channel this node has asked to be subscribed to. */
  const subscribed = new Set<string>();
  let pending: Promise<unknown> = Promise.resolve();
  let dropped = 0;
  let closing = false;

  const invalid = options.onInvalid ?? (() => {});
  function drop(reason: DropReason, message: PubSubMessage): void {
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
    if (typeof envelope !== "object" || envelope === null || envelope.v !== ENVELOPE_VERSION) return invalid(channel, `unknown envelope version`);
    if (envelope.node === nodeId) return; // our own echo: the core delivered it already
    if (typeof envelope.topic !== "string" || typeof envelope.event !== "string" || envelope.topic !== channel.slice(prefix.length)) {
      return invalid(channel, "malformed envelope");
    }
    if (envelope.from !== undefined && typeof envelope.from !== "string") return invalid(channel, "malformed envelope");
    // A node keeps receiving during UNSUBSCRIBE's round trip and the linger; the core finds no handler then.
    try {
      deliver(envelope.from === undefined ? { topic: envelope.topic, event: envelope.event, payload: envelope.payload } : { topic: envelope.topic, event: envelope.event, payload: envelope.payload, from: envelope.from });
    } catch (error) {
      // A payload that passed the envelope check but not a subscriber's (e.g. an invalid date): this
      // handler runs inside ioredis's reply parser, where a throw would break the connection.
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
        const envelope: Envelope = { v: ENVELOPE_VERSION, node: nodeId, mode: "except", topic: message.topic, event: message.event, payload: message.payload };
        if (message.from !== undefined) envelope.from = message.from;
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
