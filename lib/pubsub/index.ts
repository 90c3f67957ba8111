/**
 * PubSub: topic-based publish/subscribe between the contexts that write data and the
 * web layers that deliver it. Local delivery always happens in-process, synchronously and in
 * publish order; an adapter only carries messages to and from other nodes (lib/pubsub/redis.ts
 * when clustered), after phoenix_pubsub's `Phoenix.PubSub.Adapter`.
 *
 *     const pubsub = createLocalPubSub()
 *     const off = pubsub.subscribe("room:1", (msg) => console.log(msg.event, msg.payload))
 *     pubsub.broadcast("room:1", "message.created", message)
 *     off()
 *
 * Events and their payloads are the catalogue's (./events.ts): domain data, never rendered JSON;
 * each subscriber renders what it needs, e.g. the realtime tier renders a message once per API
 * version under its wire event. The core is generic over the catalogue so that the contract suite
 * can run it with events of its own.
 *
 * Given a Telemetry, a broadcast runs inside a `broadcast.publish` span and each delivery on this
 * node (its own, or one an adapter received) inside a `broadcast.deliver` span; the publisher's
 * trace context travels with the message to other nodes (`trace`). Without a tracer neither span
 * closure is even built: the message is delivered and handed to the adapter directly.
 */
import type { Telemetry } from "../telemetry/index.ts";
import type { PubSubEvents } from "./events.ts";

export type { PubSubEvent, PubSubEvents } from "./events.ts";

/** A catalogue: event name → payload type. */
export type EventMap = Record<string, unknown>;

/** One message; narrowing on `event` types `payload`. */
export type PubSubMessage<M extends EventMap = PubSubEvents> = {
  [E in keyof M & string]: {
    readonly topic: string;
    readonly event: E;
    readonly payload: M[E];
    /** An opaque id of the sender to skip on delivery (`broadcastFrom`). */
    readonly from?: string | undefined;
    /** The publisher's trace context (W3C traceparent), set only while tracing. */
    readonly trace?: string | undefined;
  };
}[keyof M & string];

export type PubSubHandler<M extends EventMap = PubSubEvents> = (message: PubSubMessage<M>) => void;

export interface PubSub<M extends EventMap = PubSubEvents> {
  /** Registers a handler for a topic; returns the function that removes it. */
  subscribe(topic: string, handler: PubSubHandler<M>): () => void;
  /** Delivers to every subscriber of the topic. */
  broadcast<E extends keyof M & string>(topic: string, event: E, payload: M[E]): void;
  /** Delivers to every subscriber of the topic, telling them to skip the sender `from`. */
  broadcastFrom<E extends keyof M & string>(from: string, topic: string, event: E, payload: M[E]): void;
  /** Stops delivering and releases resources. */
  close(): Promise<void>;
}

/**
 * What an adapter does: carry this node's broadcasts to the other nodes, and hand their
 * broadcasts to the core (the `deliver` function it was built with). It never delivers this
 * node's own broadcasts: the core already did, synchronously.
 */
export interface PubSubAdapter<M extends EventMap = PubSubEvents> {
  /** The core has its first local subscriber for the topic: start receiving it from other nodes. */
  interest(topic: string): void;
  /** The core has no local subscriber left for the topic: other nodes' messages are not needed. */
  disinterest(topic: string): void;
  /** Sends a message, already delivered locally, to the other nodes (at most once; never throws). */
  publish(message: PubSubMessage<M>): void;
  close(): Promise<void>;
}

/** Builds an adapter around the core's local delivery function. */
export type PubSubAdapterFactory<M extends EventMap = PubSubEvents> = (
  deliver: (message: PubSubMessage<M>) => void,
) => PubSubAdapter<M>;

/**
 * The PubSub core: local fan-out, plus an optional adapter for other nodes.
 *
 *     const pubsub = createPubSub((deliver) => myAdapter(deliver))
 */
export function createPubSub<M extends EventMap = PubSubEvents>(
  adapterFactory?: PubSubAdapterFactory<M>,
  telemetry?: Telemetry,
): PubSub<M> {
  type Message = PubSubMessage<M>;
  const handlers = new Map<string, Set<PubSubHandler<M>>>();
  let closed = false;

  function deliver(message: Message): void {
    const set = handlers.get(message.topic);
    if (set === undefined) return;
    // A handler may unsubscribe while we iterate; iterate a copy.
    for (const handler of [...set]) handler(message);
  }

  // Whether to open spans is decided per message: a tracer is installed after the PubSub exists.
  const traced = (message: Message): void => {
    if (telemetry === undefined || !telemetry.tracing()) return deliver(message);
    telemetry.span("broadcast.deliver.start", { topic: message.topic, event: message.event, link: message.trace }, () =>
      deliver(message),
    );
  };

  const adapter = adapterFactory?.(traced);

  function publish(message: Message): void {
    if (closed) return;
    if (telemetry === undefined || !telemetry.tracing()) {
      deliver(message);
      adapter?.publish(message);
      return;
    }
    telemetry.span("broadcast.publish.start", { topic: message.topic, event: message.event }, () => {
      const trace = telemetry.carry();
      const carried = trace === undefined ? message : { ...message, trace };
      traced(carried);
      adapter?.publish(carried);
    });
  }

  return {
    subscribe(topic, handler) {
      let set = handlers.get(topic);
      if (set === undefined) {
        handlers.set(topic, (set = new Set()));
        if (!closed) adapter?.interest(topic);
      }
      set.add(handler);
      return () => {
        set.delete(handler);
        if (set.size === 0 && handlers.get(topic) === set) {
          handlers.delete(topic);
          if (!closed) adapter?.disinterest(topic);
        }
      };
    },
    broadcast(topic, event, payload) {
      publish({ topic, event, payload } as Message);
    },
    broadcastFrom(from, topic, event, payload) {
      publish({ topic, event, payload, from } as Message);
    },
    async close() {
      closed = true;
      handlers.clear();
      await adapter?.close();
    },
  };
}

/** The single-node PubSub: synchronous in-process delivery, in publish order. */
export function createLocalPubSub<M extends EventMap = PubSubEvents>(telemetry?: Telemetry): PubSub<M> {
  return createPubSub<M>(undefined, telemetry);
}
