/**
 * The load generator's pure parts: the delivery marker, the ledger, a presence view, the
 * Prometheus parser and the preflight arithmetic.
 */
import test from "ava";
import { compilePayload, encodeFrame, findMarker, formatMarker, markerPrefix } from "../../lib/load/frames.ts";
import { createLedger } from "../../lib/load/ledger.ts";
import { parseMetrics } from "../../lib/load/metrics.ts";
import { socketUrl } from "../../lib/load/options.ts";
import { preflight } from "../../lib/load/preflight.ts";
import { createPresenceView, createRefTable } from "../../lib/load/presence-view.ts";

test("a marker survives the payload, the frame and JSON rendering, and is found by a byte search", (t) => {
  const prefix = markerPrefix("ab12");
  const bytes = Buffer.from(prefix);
  const payload = compilePayload('{"body":"$MARK","n":1}')(formatMarker(prefix, 3, 42, 1733059200123.4567));
  const frame = encodeFrame("1", "m42", "room:1", "message:new", payload);
  t.deepEqual(JSON.parse(frame), [
    "1",
    "m42",
    "room:1",
    "message:new",
    { body: "hcl-ab12-3-42-1733059200123.457", n: 1 },
  ]);
  const rendered = JSON.stringify([
    null,
    null,
    "room:1",
    "message:new",
    { id: 9, body: "hcl-ab12-3-42-1733059200123.457", author: { name: "x" } },
  ]);
  t.deepEqual(findMarker(Buffer.from(rendered), bytes), { publisher: 3, seq: 42, scheduledMs: 1733059200123.457 });
  t.is(findMarker(Buffer.from('[null,null,"room:1","message:new",{"body":"hello"}]'), bytes), undefined);
  t.is(findMarker(Buffer.from('{"body":"hcl-ab12-x-1-2"}'), bytes), undefined);
  t.is(findMarker(Buffer.from('{"body":"hcl-ffff-3-42-5.5"}'), bytes), undefined, "another run's marker is not ours");
  t.throws(() => markerPrefix("A-1"), { message: /a run id is \[a-z0-9\]\+/ });
});

test("--payload must be a JSON object with $MARK", (t) => {
  t.throws(() => compilePayload("nope"), { message: /--payload must be JSON/ });
  t.throws(() => compilePayload("[1]"), { message: /must be a JSON object/ });
  t.throws(() => compilePayload('{"a":1}'), { message: /must contain \$MARK/ });
});

test("the ledger tells new, duplicate, out-of-order and foreign deliveries apart", (t) => {
  const ledger = createLedger(2, 4);
  t.is(ledger.record(0, 0), "new");
  t.is(ledger.record(0, 2), "new");
  t.is(ledger.record(0, 1), "out_of_order");
  t.is(ledger.record(0, 1), "duplicate");
  t.is(ledger.record(1, 0), "new");
  t.is(ledger.record(1, 1000), "new", "past the expected count the bitset grows");
  t.is(ledger.record(1, 1000), "duplicate");
  t.is(ledger.record(2, 0), "foreign");
});

test("a presence view counts distinct metas through state and diffs", (t) => {
  const refs = createRefTable();
  const a = createPresenceView(refs);
  const b = createPresenceView(refs);
  a.state({ "1": { metas: [{ phx_ref: "r1" }] } });
  a.diff({
    joins: { "1": { metas: [{ phx_ref: "r1" }, { phx_ref: "r2" }] }, "2": { metas: [{ phx_ref: "r3" }] } },
    leaves: {},
  });
  t.is(a.size, 3);
  a.diff({ joins: {}, leaves: { "1": { metas: [{ phx_ref: "r1" }] } } });
  t.is(a.size, 2);
  b.state({ "2": { metas: [{ phx_ref: "r3" }] } });
  t.is(b.size, 1);
});

test("Prometheus text: CPU, RSS and sockets, with or without a prefix", (t) => {
  const text = [
    "# HELP process_cpu_seconds_total x",
    "process_cpu_seconds_total 12.5",
    "process_resident_memory_bytes 104857600",
    "hypercast_realtime_sockets_open 300",
    'other{a="b"} 7',
  ].join("\n");
  t.deepEqual(parseMetrics(text, 1), { at: 1, cpuSeconds: 12.5, rssBytes: 104857600, sockets: 300 });
  t.true(Number.isNaN(parseMetrics("", 1).sockets));
});

test("socket URLs get /websocket, vsn=2.0.0 and the params", (t) => {
  t.is(
    socketUrl("ws://127.0.0.1:4001/socket", { token: "a b" }),
    "ws://127.0.0.1:4001/socket/websocket?vsn=2.0.0&token=a+b",
  );
  t.is(socketUrl("ws://127.0.0.1:4001/socket/websocket", {}), "ws://127.0.0.1:4001/socket/websocket?vsn=2.0.0");
});

test("preflight spreads loopback sockets over 127.0.0.x addresses and explains limits", (t) => {
  const ok = preflight({ socketsPerWorker: [30_000, 10], loopback: true });
  t.true(ok.addresses[0]!.length >= 2, "30,000 sockets need more than one source address");
  t.true(ok.addresses.flat().every((a) => /^127\.0\.0\.\d+$/.test(a)));
  t.is(new Set(ok.addresses.flat()).size, ok.addresses.flat().length, "no address is shared between workers");
  const remote = preflight({ socketsPerWorker: [10], loopback: false });
  t.deepEqual(remote.addresses, [[]]);
});

test("lib/load imports nothing of Hypercast's server code", async (t) => {
  const { readdir, readFile } = await import("node:fs/promises");
  const dir = new URL("../../lib/load/", import.meta.url);
  const files = (await readdir(dir)).filter((f) => /\.(ts|mjs)$/.test(f));
  t.true(files.length > 5);
  for (const file of files) {
    const source = await readFile(new URL(file, dir), "utf8");
    for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
      t.false(spec!.startsWith("..") || spec!.includes("/lib/"), `${file} imports ${spec}`);
    }
  }
});
