/**
 * PubSub: topic-based publish/subscribe between the contexts that write data and the
 * web layers that deliver it. Local delivery always happens in-process; an adapter only
 * carries messages to other nodes (the Redis adapter, when clustered).
 *
 *     const pubsub = createLocalPubSub()
 *     const off = pubsub.subscribe("room:1", (msg) => console.log(msg.event, msg.payload))
 *     pubsub.broadcast("room:1", "message:new", message)
 *     off()
 *
 * Payloads are domain data (never rendered JSON): each subscriber renders what it needs,
 * e.g. the realtime tier renders a message once per API version.
 */

export interface PubSubMessage<P = unknown> {
  readonly topic: string;
  readonly event: string;
  readonly payload: P;
  /** An opaque id of the sender to skip on delivery (`broadcastFrom`). */
  readonly from?: string | undefined;
}

export type PubSubHandler = (message: PubSubMessage) => void;

export interface PubSub {
  /** Registers a handler for a topic; returns the function that removes it. */
  subscribe(topic: string, handler: PubSubHandler): () => void;
  /** Delivers to every subscriber of the topic. */
  broadcast(topic: string, event: string, payload: unknown): void;
  /** Delivers to every subscriber of the topic, telling them to skip the sender `from`. */
  broadcastFrom(from: string, topic: string, event: string, payload: unknown): void;
  /** Stops delivering and releases resources. */
  close(): Promise<void>;
}

/** The single-node PubSub: synchronous in-process delivery, in publish order. */
export function createLocalPubSub(): PubSub {
  const handlers = new Map<string, Set<PubSubHandler>>();

  function deliver(message: PubSubMessage): void {
    const set = handlers.get(message.topic);
    if (set === undefined) return;
    // A handler may unsubscribe while we iterate; iterate a copy.
    for (const handler of [...set]) handler(message);
  }

  return {
    subscribe(topic, handler) {
      let set = handlers.get(topic);
      if (set === undefined) handlers.set(topic, (set = new Set()));
      set.add(handler);
      return () => {
        set.delete(handler);
        if (set.size === 0 && handlers.get(topic) === set) handlers.delete(topic);
      };
    },
    broadcast(topic, event, payload) {
      deliver({ topic, event, payload });
    },
    broadcastFrom(from, topic, event, payload) {
      deliver({ topic, event, payload, from });
    },
    async close() {
      handlers.clear();
    },
  };
}
