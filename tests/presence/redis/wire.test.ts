import test from "ava";
import { parseDiff } from "../../../lib/presence/redis/wire.ts";

test("a well-formed diff is returned as is", (t) => {
  const diff = {
    v: 1,
    node: "n1:1:2:ab",
    kind: "change",
    joins: { "7": { metas: [{ phx_ref: "r1", online_at: "x" }] } },
    leaves: {},
  };
  t.deepEqual(parseDiff(JSON.stringify(diff)), diff);
  t.deepEqual(parseDiff(JSON.stringify({ ...diff, kind: "reap", joins: {}, leaves: diff.joins })), {
    ...diff,
    kind: "reap",
    joins: {},
    leaves: diff.joins,
  });
});

test("every malformed diff is refused with a reason, never thrown", (t) => {
  const cases: Array<[string, RegExp]> = [
    ["not json {", /not JSON/],
    ["[]", /expected an object/],
    ["null", /expected an object/],
    [JSON.stringify({ v: 2, node: "n", kind: "change", joins: {}, leaves: {} }), /unknown diff version 2/],
    [JSON.stringify({ v: 1, node: 7, kind: "change", joins: {}, leaves: {} }), /node must be a string/],
    [JSON.stringify({ v: 1, node: "n", kind: "other", joins: {}, leaves: {} }), /kind must be/],
    [JSON.stringify({ v: 1, node: "n", kind: "change", joins: null, leaves: {} }), /joins and leaves/],
    [
      JSON.stringify({ v: 1, node: "n", kind: "change", joins: {}, leaves: { "1": { metas: {} } } }),
      /joins and leaves/,
    ],
    [
      JSON.stringify({
        v: 1,
        node: "n",
        kind: "change",
        joins: { "1": { metas: [{ online_at: "no ref" }] } },
        leaves: {},
      }),
      /joins and leaves/,
    ],
    [
      JSON.stringify({ v: 1, node: "n", kind: "change", joins: { "1": { metas: [null] } }, leaves: {} }),
      /joins and leaves/,
    ],
  ];
  for (const [text, reason] of cases) {
    const result = parseDiff(text);
    t.is(typeof result, "string", text);
    t.regex(result as string, reason, text);
  }
});
