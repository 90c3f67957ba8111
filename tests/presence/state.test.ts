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

test("a join and a leave in the same window are a leave: whoever read the list in between holds it", (t) => {
  const s = createTopicState();
  track(s, "a", "1", meta("x"));
  t.false(isEmpty(s));
  untrack(s, "a");
  t.deepEqual(takeDiff(s), { joins: {}, leaves: { "1": { metas: [meta("x")] } } });
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

// Property: a client that starts from list(state) at any moment — before any change, or in the
// middle of a window, as a socket's presence_state is — and then applies every later diff (joins
// first, then leaves, as the phoenix client does) always ends with list(state). Re-tracking an
// owner with a meta it had before (a replica re-read after a gap) is among the operations.
test("a client starting from the list at any moment, then applying every later diff, ends with the state", (t) => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("track" as const),
      owner: fc.integer({ min: 0, max: 5 }),
      key: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({ kind: fc.constant("retrack" as const), owner: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("untrack" as const), owner: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("flush" as const) }),
    fc.record({ kind: fc.constant("join" as const) }),
  );
  type Client = Record<string, Set<string>>;
  const refsOf = (presences: ReturnType<typeof list>): Client =>
    Object.fromEntries(
      Object.entries(presences).map(([key, { metas }]) => [key, new Set(metas.map((m) => m.phx_ref))]),
    );
  const shape = (client: Client) =>
    JSON.stringify(
      Object.entries(client)
        .filter(([, refs]) => refs.size > 0)
        .map(([key, refs]) => [key, [...refs].sort()])
        .sort(),
    );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const s = createTopicState();
      const clients: Client[] = [{}];
      /** Each owner's last meta, tracked or not: what a re-read brings back. */
      const last = new Map<string, { key: string; ref: string }>();
      let n = 0;
      const apply = () => {
        const diff = takeDiff(s);
        if (diff === undefined) return;
        for (const client of clients) {
          for (const [key, { metas }] of Object.entries(diff.joins))
            for (const m of metas) (client[key] ??= new Set()).add(m.phx_ref);
          for (const [key, { metas }] of Object.entries(diff.leaves))
            for (const m of metas) client[key]?.delete(m.phx_ref);
        }
      };
      for (const o of ops) {
        if (o.kind === "track") {
          const ref = `r${n++}`;
          track(s, `o${o.owner}`, `k${o.key}`, meta(ref));
          last.set(`o${o.owner}`, { key: `k${o.key}`, ref });
        } else if (o.kind === "retrack") {
          const previous = last.get(`o${o.owner}`);
          if (previous !== undefined) track(s, `o${o.owner}`, previous.key, meta(previous.ref));
        } else if (o.kind === "untrack") untrack(s, `o${o.owner}`);
        else if (o.kind === "flush") apply();
        else clients.push(refsOf(list(s)));
      }
      apply();
      const expected = shape(refsOf(list(s)));
      return clients.every((client) => shape(client) === expected);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("the same meta untracked and tracked again within one window is a join only: whoever read the list in between lacks it", (t) => {
  const s = createTopicState();
  track(s, "a", "1", meta("x"));
  takeDiff(s);
  untrack(s, "a");
  track(s, "a", "1", meta("x"));
  t.deepEqual(
    takeDiff(s),
    { joins: { "1": { metas: [meta("x")] } }, leaves: {} },
    "never in leaves: clients apply joins first, then leaves",
  );
  t.deepEqual(list(s), { "1": { metas: [meta("x")] } });
});
