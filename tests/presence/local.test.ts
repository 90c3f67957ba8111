import test from "ava";
import { createLocalPresence, type PresenceDiff } from "../../lib/presence/index.ts";

test("diffs are coalesced per topic within the window", async (t) => {
  const presence = createLocalPresence({ windowMs: 20 });
  const diffs: PresenceDiff[] = [];
  presence.subscribe("room:1", (d) => diffs.push(d));
  for (let i = 0; i < 50; i++) presence.track("room:1", `s${i}`, String(i), { online_at: "x" });
  t.is(diffs.length, 0);
  await presence.flush();
  t.is(diffs.length, 1);
  t.is(Object.keys(diffs[0]!.joins).length, 50);
  t.deepEqual(diffs[0]!.leaves, {});
});

test("a diff arrives by itself after the window", async (t) => {
  const presence = createLocalPresence({ windowMs: 5 });
  const diff = new Promise<PresenceDiff>((resolve) => presence.subscribe("room:2", resolve));
  const meta = presence.track("room:2", "s", "1", { online_at: "x" });
  t.deepEqual(await diff, { joins: { "1": { metas: [meta] } }, leaves: {} });
});

test("phx_refs are unique and list has the presence_state shape", (t) => {
  const presence = createLocalPresence();
  const a = presence.track("room:3", "phone", "9", { online_at: "x" });
  const b = presence.track("room:3", "laptop", "9", { online_at: "y" });
  t.not(a.phx_ref, b.phx_ref);
  t.deepEqual(presence.list("room:3"), { "9": { metas: [a, b] } });
  t.deepEqual(presence.list("room:none"), {});
});

test("untrack produces a leave with the same phx_ref; unsubscribed listeners hear nothing", async (t) => {
  const presence = createLocalPresence({ windowMs: 1000 });
  const seen: PresenceDiff[] = [];
  const quiet: PresenceDiff[] = [];
  presence.subscribe("room:4", (d) => seen.push(d));
  const off = presence.subscribe("room:4", (d) => quiet.push(d));
  const meta = presence.track("room:4", "s", "1", { online_at: "x" });
  await presence.flush();
  off();
  presence.untrack("room:4", "s");
  await presence.flush();
  t.deepEqual(seen[1], { joins: {}, leaves: { "1": { metas: [meta] } } });
  t.is(quiet.length, 1);
  t.deepEqual(presence.list("room:4"), {});
});
