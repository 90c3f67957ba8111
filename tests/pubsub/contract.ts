/**
 * The PubSub contract every implementation passes (the local core alone, and with the Redis
 * adapter), after phoenix_pubsub's test/shared/pubsub_test.exs. A test file calls
 * `pubsubContract("redis", factory)`; each test gets a fresh PubSub and closes it.
 */
import test from "ava";
import type { PubSub, PubSubMessage } from "../../lib/pubsub/index.ts";

/** The suite's own catalogue: any event, any payload (the core is generic over the catalogue). */
export type AnyEvents = Record<string, unknown>;

export interface PubSubUnderTest {
  pubsub: PubSub<AnyEvents>;
  /** Waits until subscriptions made so far are effective (the Redis adapter's SUBSCRIBE ack). */
  settle?: () => Promise<void>;
}

export function pubsubContract(name: string, create: () => Promise<PubSubUnderTest>): void {
  const topic = () => `room:${Math.random().toString(36).slice(2)}`;

  async function withPubSub(run: (under: PubSubUnderTest) => Promise<void> | void): Promise<void> {
    const under = await create();
    try {
      await run(under);
    } finally {
      await under.pubsub.close();
    }
  }

  test(`${name}: a subscriber receives the topic's broadcasts synchronously, and none after unsubscribing`, (t) =>
    withPubSub(({ pubsub }) => {
      const room = topic();
      const seen: PubSubMessage<AnyEvents>[] = [];
      const off = pubsub.subscribe(room, (m) => seen.push(m));
      pubsub.broadcast(room, "message:new", { id: 1 });
      t.deepEqual(seen, [{ topic: room, event: "message:new", payload: { id: 1 } }]);
      off();
      pubsub.broadcast(room, "message:new", { id: 2 });
      t.is(seen.length, 1);
      off(); // idempotent
    }));

  test(`${name}: topics are isolated and every subscriber of a topic receives each message`, (t) =>
    withPubSub(({ pubsub }) => {
      const [a, b] = [topic(), topic()];
      const first: unknown[] = [];
      const second: unknown[] = [];
      const other: unknown[] = [];
      pubsub.subscribe(a, (m) => first.push(m.payload));
      pubsub.subscribe(a, (m) => second.push(m.payload));
      pubsub.subscribe(b, (m) => other.push(m.payload));
      pubsub.broadcast(a, "e", 1);
      t.deepEqual(first, [1]);
      t.deepEqual(second, [1]);
      t.deepEqual(other, []);
    }));

  test(`${name}: delivery is in publish order and payloads are the published values (a Date stays a Date)`, (t) =>
    withPubSub(({ pubsub }) => {
      const room = topic();
      const seen: unknown[] = [];
      pubsub.subscribe(room, (m) => seen.push(m.payload));
      for (let i = 0; i < 500; i++) pubsub.broadcast(room, "n", i);
      t.deepEqual(
        seen,
        Array.from({ length: 500 }, (_, i) => i),
      );
      const at = new Date("2026-01-02T03:04:05.678Z");
      const got: unknown[] = [];
      pubsub.subscribe(room, (m) => got.push(m.payload));
      pubsub.broadcast(room, "message:new", { insertedAt: at });
      t.true((got[0] as { insertedAt: Date }).insertedAt instanceof Date);
      t.is((got[0] as { insertedAt: Date }).insertedAt.toISOString(), at.toISOString());
    }));

  test(`${name}: broadcastFrom tells subscribers whom to skip; broadcast has no sender`, (t) =>
    withPubSub(({ pubsub }) => {
      const room = topic();
      const seen: PubSubMessage<AnyEvents>[] = [];
      pubsub.subscribe(room, (m) => seen.push(m));
      pubsub.broadcastFrom("socket-7", room, "typing", { user: 7 });
      pubsub.broadcast(room, "typing", { user: 8 });
      t.is(seen[0]?.from, "socket-7");
      t.is(seen[1]?.from, undefined);
      t.false(seen[1] !== undefined && "from" in seen[1] && seen[1].from !== undefined);
    }));

  test(`${name}: a handler may unsubscribe itself or another during delivery`, (t) =>
    withPubSub(({ pubsub }) => {
      const room = topic();
      const seen: string[] = [];
      let offB: () => void = () => {};
      const offA = pubsub.subscribe(room, (m) => {
        seen.push(`a${String(m.payload)}`);
        offA();
        offB();
      });
      offB = pubsub.subscribe(room, (m) => seen.push(`b${String(m.payload)}`));
      pubsub.subscribe(room, (m) => seen.push(`c${String(m.payload)}`));
      pubsub.broadcast(room, "e", 1);
      pubsub.broadcast(room, "e", 2);
      // The message being delivered reaches everyone subscribed when it was published.
      t.deepEqual(seen, ["a1", "b1", "c1", "c2"]);
    }));

  test(`${name}: re-subscribing after the last unsubscribe delivers again`, (t) =>
    withPubSub(async ({ pubsub, settle }) => {
      const room = topic();
      const seen: unknown[] = [];
      pubsub.subscribe(room, () => {})();
      await settle?.();
      pubsub.subscribe(room, (m) => seen.push(m.payload));
      await settle?.();
      pubsub.broadcast(room, "e", "again");
      t.deepEqual(seen, ["again"]);
    }));

  test(`${name}: after close nothing is delivered and broadcasting does not throw`, async (t) => {
    const { pubsub } = await create();
    const room = topic();
    const seen: unknown[] = [];
    pubsub.subscribe(room, (m) => seen.push(m));
    await pubsub.close();
    t.notThrows(() => pubsub.broadcast(room, "e", 1));
    t.notThrows(() => pubsub.subscribe(room, () => {})());
    t.deepEqual(seen, []);
  });
}
