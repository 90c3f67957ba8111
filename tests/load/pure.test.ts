/**
 * The load generator's pure parts: the delivery marker, the ledger, a presence view, the
 * Prometheus parser and the preflight arithmetic.
 */
import test from "ava";
import { compilePayload, encodeFrame, findMarker, formatMarker, markerPrefix } from "../../lib/load/frames.ts";
import { Latencies } from "../../lib/load/histograms.ts";
import { createLedger } from "../../lib/load/ledger.ts";
import { parseMetrics } from "../../lib/load/metrics.ts";
import { parseOptions, socketUrl } from "../../lib/load/options.ts";
import { plansSourceAddresses, preflight, readOpenFileLimit, readPortRange } from "../../lib/load/preflight.ts";
import { judgeClients } from "../../lib/load/self-check.ts";
import { stormCompleteMs } from "../../lib/load/coordinator.ts";
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
  // Each part must be there, with its separator: a truncated or garbled marker is not a delivery.
  for (const body of [
    "hcl-ab12-3",
    "hcl-ab12-3-",
    "hcl-ab12-3-42",
    "hcl-ab12-3-42-",
    "hcl-ab12--42-5",
    "hcl-ab12-3-x-5",
  ])
    t.is(findMarker(Buffer.from(`{"body":"${body}"}`), bytes), undefined, body);
  t.deepEqual(
    findMarker(Buffer.from("hcl-ab12-0-7-5.5"), bytes),
    { publisher: 0, seq: 7, scheduledMs: 5.5 },
    "at the frame's end",
  );
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

const LINUX = { platform: "linux" as const, openFiles: 1_048_576, portRange: [32_768, 60_999] as const };

test("preflight spreads loopback sockets over 127.0.0.x addresses", (t) => {
  const ok = preflight({ socketsPerWorker: [30_000, 10], hosts: ["127.0.0.1"], ...LINUX });
  t.deepEqual(ok.problems, []);
  t.is(ok.portRange, 28_232);
  t.true(ok.addresses[0]!.length >= 2, "30,000 sockets need more than one source address");
  t.true(ok.addresses.flat().every((a) => /^127\.0\.0\.\d+$/.test(a)));
  t.is(new Set(ok.addresses.flat()).size, ok.addresses.flat().length, "no address is shared between workers");
  const remote = preflight({ socketsPerWorker: [10], hosts: ["192.0.2.1"], ...LINUX });
  t.deepEqual(remote.addresses, [[]]);
});

test("a loopback run that one address's ports can carry binds no source address (bind() searches the bound ports)", (t) => {
  // 80% of 28,232 ports: 22,585 sockets fit one address; over that, every worker gets addresses of its own.
  t.deepEqual(preflight({ socketsPerWorker: [10_000, 12_585], hosts: ["127.0.0.1"], ...LINUX }).addresses, [[], []]);
  const over = preflight({ socketsPerWorker: [10_000, 12_586], hosts: ["127.0.0.1"], ...LINUX }).addresses;
  t.deepEqual(over, [["127.0.0.2"], ["127.0.0.3"]]);
});

test("source addresses are planned only on Linux and only when every target is IPv4 127.x", (t) => {
  t.true(plansSourceAddresses(["127.0.0.1", "127.0.1.7"], "linux"));
  t.false(plansSourceAddresses(["[::1]"], "linux"), "a socket to ::1 cannot be bound to 127.0.0.x");
  t.false(plansSourceAddresses(["127.0.0.1", "[::1]"], "linux"), "one IPv6 target is enough to plan none");
  t.false(plansSourceAddresses(["localhost"], "linux"));
  t.false(plansSourceAddresses(["127.0.0.1"], "darwin"), "macOS answers on 127.0.0.1 only");
  t.false(plansSourceAddresses(["127.0.0.1"], "win32"));
  t.false(plansSourceAddresses([], "linux"));
  const v6 = preflight({ socketsPerWorker: [100, 100], hosts: ["[::1]"], ...LINUX });
  t.deepEqual(v6.addresses, [[], []]);
  const mac = preflight({ socketsPerWorker: [100], hosts: ["127.0.0.1"], ...LINUX, platform: "darwin" });
  t.deepEqual(mac.addresses, [[]]);
  const mixed = preflight({ socketsPerWorker: [100], hosts: ["127.0.0.1", "[::1]"], ...LINUX });
  t.deepEqual(mixed.addresses, [[]]);
});

test("preflight says what to change: ulimit -n for open files, sysctl for the port range", (t) => {
  const files = preflight({ socketsPerWorker: [5000, 10], hosts: ["127.0.0.1"], ...LINUX, openFiles: 1024 });
  t.deepEqual(files.problems, [
    "worker 1 needs about 5,064 open files but the limit is 1,024: raise it (ulimit -n 65536) or add workers (--workers 6)",
  ]);
  t.deepEqual(preflight({ socketsPerWorker: [960], hosts: ["127.0.0.1"], ...LINUX, openFiles: 1024 }).problems, []);
  // 100 ports: 80 per address, so 253 addresses carry 20,240 sockets and 30,000 cannot be spread.
  const ports = preflight({ socketsPerWorker: [30_000], hosts: ["127.0.0.1"], ...LINUX, portRange: [60_000, 60_099] });
  t.deepEqual(ports.problems, [
    '30,000 sockets need 375 source addresses in 127.0.0.x (at most 253) with a 100-port range: widen the ephemeral port range (sysctl -w net.ipv4.ip_local_port_range="1024 65535")',
  ]);
  // Without spread source addresses (an IPv6 or remote target), the range is a warning with the same advice.
  const v6 = preflight({ socketsPerWorker: [100], hosts: ["[::1]"], ...LINUX, portRange: [60_000, 60_099] });
  t.deepEqual(v6.problems, []);
  t.deepEqual(v6.warnings, [
    '100 sockets from one address to one server port exceed 80% of the 100-port ephemeral range: widen the ephemeral port range (sysctl -w net.ipv4.ip_local_port_range="1024 65535") or spread clients over machines',
  ]);
  t.deepEqual(preflight({ socketsPerWorker: [10], hosts: ["127.0.0.1"], ...LINUX, openFiles: Infinity }).problems, []);
});

test("preflight reads this process's open-file limit and port range by default", (t) => {
  const check = preflight({ socketsPerWorker: [1], hosts: ["127.0.0.1"] });
  t.is(check.openFiles, readOpenFileLimit());
  t.true(check.openFiles > 64, `open files ${check.openFiles}`);
  const range = readPortRange();
  if (process.platform === "linux") t.is(check.portRange, range![1] - range![0] + 1);
  t.true(check.portRange > 1000);
});

test("self-check: one saturated worker, the workers together, a lagging event loop, and connect-phase saturation", (t) => {
  const bounds = { maxClientCpu: 0.9, maxLagMs: 100 };
  const calm = judgeClients({ cpu: [[0.5, 0.6, 0.5]], lag: [[10, 20, 30]], measureFrom: [0], cores: 1, ...bounds });
  t.deepEqual(calm, { invalid: [], warnings: [] });
  // One sample over the bound is a blip, two in a row are saturation.
  t.deepEqual(
    judgeClients({ cpu: [[0.95, 0.5, 0.95]], lag: [[1]], measureFrom: [0], cores: 1, ...bounds }).invalid,
    [],
  );
  t.deepEqual(judgeClients({ cpu: [[0.5, 0.95, 0.96]], lag: [[1]], measureFrom: [0], cores: 1, ...bounds }).invalid, [
    "client worker 1 was saturated: ≥ 90% of a core for 2 s (the figures would measure the client, not the server)",
    "the client processes together saturated the 1 core(s) they may use (≥ 90% for 2 s)",
  ]);
  // Four workers on two cores, none saturated alone, together 1.8 of 2 cores for 2 s.
  const together = judgeClients({
    cpu: [
      [0.45, 0.46],
      [0.45, 0.46],
      [0.45, 0.46],
      [0.45, 0.46],
    ],
    lag: [[1], [1], [1], [1]],
    measureFrom: [0, 0, 0, 0],
    cores: 2,
    ...bounds,
  });
  t.deepEqual(together.invalid, ["the client processes together saturated the 2 core(s) they may use (≥ 90% for 2 s)"]);
  t.deepEqual(judgeClients({ cpu: [[0.1]], lag: [[5, 150, 20]], measureFrom: [0], cores: 1, ...bounds }).invalid, [
    "client worker 1's event loop lagged 150 ms (p99 over 1 s) past the bound of 100 ms",
  ]);
  // Saturated and lagging only before the measured phase: a warning, not a verdict.
  const connecting = judgeClients({
    cpu: [[0.95, 0.99, 0.2, 0.2]],
    lag: [[500, 500, 5, 5]],
    measureFrom: [2],
    cores: 1,
    ...bounds,
  });
  t.deepEqual(connecting, {
    invalid: [],
    warnings: ["client worker 1 was saturated while connecting: connect_ms and join_ms include client queueing"],
  });
});

test("presence refuses publishers and churners, which would change what a complete view is", (t) => {
  const base = ["presence", "--topic", "room:1", "--subscribers", "10"];
  t.is(parseOptions(base).publishers, 0);
  for (const extra of [
    ["--publishers", "1"],
    ["--churners", "2"],
  ])
    t.throws(() => parseOptions([...base, ...extra]), {
      message:
        "presence tracks --subscribers sockets only: --publishers and --churners do not apply (run churn or fanout for those)",
    });
});

test("a presence storm runs from the earliest dial any worker reports to the last complete view", (t) => {
  t.is(
    stormCompleteMs([
      { firstDialAt: 10_500, presenceCompleteAt: 12_000 },
      { firstDialAt: 10_200, presenceCompleteAt: 12_700 },
    ]),
    2500,
  );
  // A worker that dialled nothing (0) does not pull the start back to the epoch.
  t.is(
    stormCompleteMs([
      { firstDialAt: 0, presenceCompleteAt: 0 },
      { firstDialAt: 5000, presenceCompleteAt: 5400 },
    ]),
    400,
  );
  t.true(Number.isNaN(stormCompleteMs([{ firstDialAt: 5000, presenceCompleteAt: 0 }])));
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

test("latencies: recorded once, folded each second into the second's, each URL's and the run's", (t) => {
  const latencies = new Latencies(2);
  latencies.record(0, 1_000);
  latencies.record(1, 3_000);
  latencies.record(1, 5_000);
  const first = latencies.fold();
  t.is(first.totalCount, 3);
  t.is(first.maxValue, 5_000);
  t.deepEqual(
    latencies.byUrl.map((h) => h.totalCount),
    [1, 2],
  );
  latencies.record(0, 2_000);
  const second = latencies.fold();
  t.is(second.totalCount, 1, "a second holds only what came since the last fold");
  t.is(latencies.run.totalCount, 4);
  t.deepEqual(
    latencies.byUrl.map((h) => h.totalCount),
    [2, 2],
  );
  t.is(latencies.fold().totalCount, 0);
  t.is(latencies.run.totalCount, 4, "folding nothing adds nothing");
});
