/**
 * `hypercast-load` as a person runs it: the installed command (lib/load/bin.mjs) and `npm run load`,
 * the exit code, the progress lines and summary, --out written whether the run was valid or not,
 * --report as one offline HTML file, and the refusals (a remote target, bad options).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import test from "ava";
import type { LoadResult } from "../../lib/load/types.ts";
import { startPhoenixServer } from "./helpers.ts";

type Run = { code: number | null; stdout: string; stderr: string };

function cli(args: string[]): Promise<Run> {
  return run(process.execPath, ["--import", "tsx", "lib/load/cli.ts", ...args]);
}

function run(command: string, args: string[]): Promise<Run> {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    // The command's `#!/usr/bin/env node` finds the node running this test.
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env["PATH"] ?? ""}` },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** A plain progress line, as printed when stdout is not a terminal (./lib/load/summary.ts progressLine). */
const PROGRESS =
  /^ +\d+s (connect|publish|drain) +conn \d+ +joined \d+ +failed \d+ +deliv\/s [\d,]+ +p99 .+ client cpu \d+% +lag \d+ ms$/m;

for (const [how, command, prefix] of [
  ["the installed command (lib/load/bin.mjs)", "lib/load/bin.mjs", []],
  ["npm run load --", "npm", ["run", "--silent", "load", "--"]],
] as const) {
  test.serial(`${how}: a ws-client fanout with two publishers, a join payload and a ramp`, async (t) => {
    const joinPayload = { presence: false, client: "load" };
    const server = await startPhoenixServer({ expectJoinPayload: joinPayload });
    t.teardown(server.stop);
    const dir = await mkdtemp(join(tmpdir(), "load-"));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const r = await run(command, [
      ...prefix,
      "fanout",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--client",
      "ws",
      "--subscribers",
      "20",
      "--publishers",
      "2",
      "--event",
      "message:new",
      "--ramp",
      "50",
      "--join-payload",
      JSON.stringify(joinPayload),
      "--rate",
      "40",
      "--duration",
      "2",
      "--workers",
      "1",
      "--max-client-cpu",
      "2",
      "--max-lag-ms",
      "100000",
      "--out",
      join(dir, "r.json"),
    ]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, PROGRESS, "plain progress lines when stdout is not a terminal");
    t.regex(r.stdout, /valid\s+yes/);
    const result = JSON.parse(await readFile(join(dir, "r.json"), "utf8")) as LoadResult;
    t.true(result.valid, result.invalid_reasons.join("; "));
    t.like(result.settings, { client: "ws", publishers: 2, ramp: 50, event: "message:new", subscribers: 20 });
    // The server refuses any other join payload: every socket joining proves it was sent.
    t.like(result.connections, { attempted: 22, joined: 22, failed: 0, closed: 0 });
    t.deepEqual(result.errors["join"], {});
    t.is(result.messages.published, 80, "--rate 40 for 2 s over two publishers");
    t.is(result.messages.acknowledged, 80);
    t.is(result.deliveries.expected, 80 * 20);
    t.is(result.deliveries.received, 80 * 20);
    t.is(result.deliveries.completeness, 1);
    t.is(result.client.kind, "ws");
  });
}

test.serial(
  "a run whose clients are judged saturated is not valid: exit 1, reasons, and --out and --report still written",
  async (t) => {
    const server = await startPhoenixServer();
    t.teardown(server.stop);
    const dir = await mkdtemp(join(tmpdir(), "load-"));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // Any CPU at all counts as saturation with a bound of 0: the self-check must then refuse the run.
    const run = await cli([
      "fanout",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "20",
      "--rate",
      "50",
      "--duration",
      "3",
      "--workers",
      "1",
      "--max-client-cpu",
      "0",
      "--out",
      join(dir, "r.json"),
      "--report",
      join(dir, "r.html"),
    ]);
    t.is(run.code, 1, run.stderr);
    t.regex(run.stderr, /NOT valid: client worker 1 was saturated/);
    t.regex(run.stdout, /deliveries expected \/ received\s+[\d,]+ \/ [\d,]+/);
    const result = JSON.parse(await readFile(join(dir, "r.json"), "utf8")) as LoadResult;
    t.false(result.valid);
    t.true(result.invalid_reasons.some((r) => r.includes("saturated")));
    t.is(result.deliveries.completeness, 1);
    t.true(result.timeline.length >= 3);
    t.regex(run.stdout, PROGRESS, "plain progress lines when stdout is not a terminal");
    const html = await readFile(join(dir, "r.html"), "utf8");
    const uplot = await readFile(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
    const middle = Math.floor(uplot.length / 2);
    t.true(html.includes(uplot.slice(middle, middle + 400)), "a chunk of uPlot's build is in the file");
    t.true(html.includes(uplot.trim()), "uPlot's whole build is inlined");
    for (const title of [
      "publish→delivery latency (ms), per second",
      "connections",
      "deliveries per second",
      "client CPU (cores) and event-loop lag p99 (s)",
    ])
      t.true(html.includes(`{"title":"${title}","series":`), `the report charts ${title}`);
    t.false(/<script[^>]+src=|<link[^>]+href=/i.test(html), "nothing is loaded from elsewhere");
    t.true(html.includes("NOT VALID"));
  },
);

test.serial("a valid run exits 0 and prints the summary", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const run = await cli([
    "connect",
    "--url",
    server.url,
    "--topic",
    "room:1",
    "--subscribers",
    "10",
    "--duration",
    "1",
    "--workers",
    "1",
    "--max-client-cpu",
    "2",
    "--max-lag-ms",
    "100000",
  ]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /valid\s+yes/);
  t.regex(run.stdout, /connections attempted \/ joined \/ failed \/ closed\s+10 \/ 10 \/ 0 \/ 0/);
});

test("a target that is not on loopback is refused without --allow-remote (exit 2)", async (t) => {
  const run = await cli(["fanout", "--url", "ws://192.0.2.1:4001/socket", "--topic", "room:1"]);
  t.is(run.code, 2);
  t.regex(run.stderr, /not on loopback; pass --allow-remote/);
});

test("bad options are explained (exit 2)", async (t) => {
  const scenario = await cli(["flood", "--topic", "room:1"]);
  t.is(scenario.code, 2);
  t.regex(scenario.stderr, /expected a scenario \(fanout, connect, presence, churn\), got "flood"/);
  const payload = await cli(["fanout", "--topic", "room:1", "--payload", '{"body":"x"}']);
  t.regex(payload.stderr, /--payload must contain \$MARK/);
  // One socket more than the open-file limit allows (read as the preflight reads it).
  const limit = Number(/Max open files\s+(\d+)/.exec(await readFile("/proc/self/limits", "utf8"))?.[1]);
  const preflight = await cli(["connect", "--topic", "room:1", "--subscribers", String(limit), "--workers", "1"]);
  t.is(preflight.code, 2);
  t.regex(
    preflight.stderr,
    /preflight failed:\n- worker 1 needs about [\d,]+ open files but the limit is [\d,]+: raise it \(ulimit -n \d+\) or add workers/,
  );
});
