import test from "ava";
import fc from "fast-check";
import { createTopicState, isEmpty, list, takeDiff, track, untrack } from "../../lib/presence/state.ts";

const meta = (ref: string) => ({ phx_ref: ref, online_at: "2026-01-01T00:00:00.000Z" });

test("track lists the entry and reports it as a join", (t) => {
  const s = createTopicState();
  track(s, "sock1", "42", meta("a"));
  t.deepEqual(list(s), { "42": { metas: [meta("a")] } });
  t.deepEqual(takeDiff(s), { joins: { "42": { metas: [meta("a")] } }, leaves: {} });
  t.is(takeDiff(s), undefined);
});

test("two owners of one key are two metas under that key", (t) => {
  const s = createTopicState();
  track(s, "phone", "7", meta("p"));
  track(s, "laptop", "7", meta("l"));
  t.deepEqual(list(s), { "7": { metas: [meta("p"), meta("l")] } });
  takeDiff(s);
  untrack(s, "phone");
  t.deepEqual(list(s), { "7": { metas: [meta("l")] } });
  t.deepEqual(takeDiff(s), { joins: {}, leaves: { "7": { metas: [meta("p")] } } });
});

test("a join and a leave in the same window cancel out", (t) => {
  const s = createTopicState();
  track(s, "a", "1", meta("x"));
  untrack(s, "a");
  t.is(takeDiff(s), undefined);
  t.true(isEmpty(s));
});

test("re-tracking an owner is an update: join of the new meta and leave of the old one in one diff", (t) => {
  const s = createTopicState();
  track(s, "a", "1", meta("old"));
  takeDiff(s);
  track(s, "a", "1", meta("new"));
  t.deepEqual(takeDiff(s), { joins: { "1": { metas: [meta("new")] } }, leaves: { "1": { metas: [meta("old")] } } });
  t.deepEqual(list(s), { "1": { metas: [meta("new")] } });
});

test("untracking an unknown owner changes nothing", (t) => {
  const s = createTopicState();
  t.false(untrack(s, "nobody"));
  t.is(takeDiff(s), undefined);
});

test("many changes coalesce into one diff grouped by key", (t) => {
  const s = createTopicState();
  for (let i = 0; i < 1000; i++) track(s, `s${i}`, String(i % 10), meta(`r${i}`));
  const diff = takeDiff(s)!;
  t.is(Object.keys(diff.joins).length, 10);
  t.is(diff.joins["3"]!.metas.length, 100);
  t.deepEqual(diff.leaves, {});
});

// Property: replaying the diffs onto a client-side copy (joins first, then leaves, as the phoenix
// client does) always reproduces list(state).
test("applying every diff to the previous list reproduces the state", (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("track" as const), owner: fc.integer({ min: 0, max: 5 }), key: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant("untrack" as const), owner: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("flush" as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const s = createTopicState();
      let client: Record<string, Set<string>> = {};
      let n = 0;
      const apply = () => {
        const diff = takeDiff(s);
        if (diff === undefined) return;
        for (const [key, { metas }] of Object.entries(diff.joins)) for (const m of metas) (client[key] ??= new Set()).add(m.phx_ref);
        for (const [key, { metas }] of Object.entries(diff.leaves)) {
          for (const m of metas) client[key]?.delete(m.phx_ref);
          if (client[key]?.size === 0) delete client[key];
        }
      };
      for (const o of ops) {
        if (o.kind === "track") track(s, `o${o.owner}`, `k${o.key}`, meta(`r${n++}`));
        else if (o.kind === "untrack") untrack(s, `o${o.owner}`);
        else apply();
      }
      apply();
      const expected: Record<string, string[]> = {};
      for (const [key, { metas }] of Object.entries(list(s))) expected[key] = metas.map((m) => m.phx_ref).sort();
      const actual: Record<string, string[]> = {};
      client = Object.fromEntries(Object.entries(client).filter(([, v]) => v.size > 0));
      for (const [key, refs] of Object.entries(client)) actual[key] = [...refs].sort();
      return JSON.stringify(Object.entries(expected).sort()) === JSON.stringify(Object.entries(actual).sort());
    }),
  );
  t.pass();
});

test("the same meta untracked and tracked again within one window is in neither side (clients still hold it)", (t) => {
  const s = createTopicState();
  track(s, "a", "1", meta("x"));
  takeDiff(s);
  untrack(s, "a");
  track(s, "a", "1", meta("x"));
  t.is(takeDiff(s), undefined, "a diff with x as both join and leave would make clients (joins first) drop it");
  t.deepEqual(list(s), { "1": { metas: [meta("x")] } });
});
