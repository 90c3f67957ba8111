/**
 * `hypercast-load` as a person runs it: the exit code, the summary, --out written whether the run
 * was valid or not, --report as one offline HTML file, and the refusals (a remote target, bad options).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { LoadResult } from "../../lib/load/types.ts";
import { startPhoenixServer } from "./helpers.ts";

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "lib/load/cli.ts", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
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
    const html = await readFile(join(dir, "r.html"), "utf8");
    t.true(html.includes("uPlot"), "uPlot is inlined");
    t.false(/<script[^>]+src=|<link[^>]+href=/i.test(html), "nothing is loaded from elsewhere");
    t.true(html.includes("NOT VALID"));
    t.true(html.includes("publish→delivery latency"));
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
