/**
 * The Presence contract both stores pass (local, Redis): what the realtime tier relies on.
 * `settle(topic)` waits until a fresh subscription is effective (the Redis store's snapshot).
 */
import test from "ava";
import type { Presence, PresenceDiff } from "../../lib/presence/index.ts";

export interface PresenceUnderTest {
  presence: Presence;
  settle?: (topic: string) => Promise<unknown>;
  close?: () => Promise<void>;
}

export function presenceContract(name: string, create: (windowMs: number) => Promise<PresenceUnderTest>): void {
  const topic = () => `room:${Math.random().toString(36).slice(2)}`;

  async function withPresence(
    windowMs: number,
    run: (under: PresenceUnderTest, diffsOf: (topic: string) => Promise<PresenceDiff[]>) => Promise<void>,
  ) {
    const under = await create(windowMs);
    const diffsOf = async (room: string) => {
      const diffs: PresenceDiff[] = [];
      under.presence.subscribe(room, (d) => diffs.push(d));
      await under.settle?.(room);
      return diffs;
    };
    try {
      await run(under, diffsOf);
    } finally {
      await under.close?.();
    }
  }

  test(`${name}: track gives a fresh phx_ref and a joins diff; untrack a leaves diff with the same meta`, (t) =>
    withPresence(10, async ({ presence }, diffsOf) => {
      const room = topic();
      const diffs = await diffsOf(room);
      const meta = presence.track(room, "sock-1", "42", { online_at: "2026-01-01T00:00:00.000Z" });
      t.is(typeof meta.phx_ref, "string");
      t.is(meta["online_at"], "2026-01-01T00:00:00.000Z");
      await presence.flush();
      t.deepEqual(diffs, [{ joins: { "42": { metas: [meta] } }, leaves: {} }]);
      presence.untrack(room, "sock-1");
      presence.untrack(room, "sock-unknown");
      await presence.flush();
      t.deepEqual(diffs[1], { joins: {}, leaves: { "42": { metas: [meta] } } });
      t.deepEqual(presence.list(room), {});
    }));

  test(`${name}: two sockets of one key are two metas; list has the presence_state shape`, (t) =>
    withPresence(10, async ({ presence }, diffsOf) => {
      const room = topic();
      await diffsOf(room);
      const a = presence.track(room, "phone", "9", { online_at: "x" });
      const b = presence.track(room, "laptop", "9", { online_at: "y" });
      const c = presence.track(room, "other", "10", { online_at: "z" });
      t.deepEqual(presence.list(room), { "9": { metas: [a, b] }, "10": { metas: [c] } });
      t.deepEqual(presence.list(`${room}:none`), {});
      presence.untrack(room, "phone");
      t.deepEqual(presence.list(room), { "9": { metas: [b] }, "10": { metas: [c] } });
    }));

  test(`${name}: diffs are coalesced per topic within the window`, (t) =>
    withPresence(50, async ({ presence }, diffsOf) => {
      const [room, other] = [topic(), topic()];
      const diffs = await diffsOf(room);
      const otherDiffs = await diffsOf(other);
      for (let i = 0; i < 30; i++) presence.track(room, `s${i}`, String(i), { online_at: "x" });
      presence.untrack(room, "s0"); // joined and left in one window: a leave, for whoever listed it meanwhile
      presence.track(other, "o", "1", { online_at: "x" });
      await presence.flush();
      t.is(diffs.length, 1);
      t.is(Object.keys(diffs[0]!.joins).length, 29);
      t.false("0" in diffs[0]!.joins);
      t.deepEqual(Object.keys(diffs[0]!.leaves), ["0"]);
      t.is(otherDiffs.length, 1);
    }));

  test(`${name}: re-tracking an owner is one diff: leave of the old meta, join of the new one`, (t) =>
    withPresence(10, async ({ presence }, diffsOf) => {
      const room = topic();
      const diffs = await diffsOf(room);
      const old = presence.track(room, "s", "1", { status: "away" });
      await presence.flush();
      const fresh = presence.track(room, "s", "1", { status: "here" });
      await presence.flush();
      t.not(fresh.phx_ref, old.phx_ref);
      t.is(diffs.length, 2);
      t.deepEqual(diffs[1]!.leaves, { "1": { metas: [old] } });
      t.deepEqual(diffs[1]!.joins, { "1": { metas: [fresh] } });
      t.deepEqual(presence.list(room), { "1": { metas: [fresh] } });
    }));

  test(`${name}: phx_refs are unique, across topics and re-tracks`, (t) =>
    withPresence(10, async ({ presence }) => {
      const refs = new Set<string>();
      for (let i = 0; i < 200; i++) refs.add(presence.track(`room:u${i % 3}`, `s${i % 50}`, String(i % 7), {}).phx_ref);
      t.is(refs.size, 200);
      await presence.flush();
    }));

  test(`${name}: an unsubscribed listener hears nothing more`, (t) =>
    withPresence(10, async ({ presence, settle }) => {
      const room = topic();
      const quiet: PresenceDiff[] = [];
      const loud: PresenceDiff[] = [];
      presence.subscribe(room, (d) => loud.push(d));
      const off = presence.subscribe(room, (d) => quiet.push(d));
      await settle?.(room);
      off();
      presence.track(room, "s", "1", {});
      await presence.flush();
      t.is(loud.length, 1);
      t.deepEqual(quiet, []);
    }));
}
