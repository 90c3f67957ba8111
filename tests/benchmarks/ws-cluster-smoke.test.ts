/**
 * Smoke runs of `bench:ws`, `bench:cluster` and `bench:joins` (`--smoke`: tiny sizes, seconds) so the harnesses
 * keep working. No timing is judged here: a run may come back "invalid" (exit 3) when the shared
 * machine starves the load generator, but it must finish, print its table, and lose nothing (exit 1
 * would mean a lost or duplicated delivery, or a crash).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { runCommand } from "../helpers/processes.ts";

/** `node --import tsx FILE --smoke ARGS` with `env` over the tests' own, to its end (each benchmark bounds itself). */
const run = (file: string, env: Record<string, string> = {}, args: string[] = []) =>
  runCommand(process.execPath, ["--import", "tsx", file, "--smoke", ...args], { env });

test.serial("bench:ws --smoke measures Hypercast and raw uWS with hypercast-load, completely", async (t) => {
  const r = await run("benchmarks/ws.ts");
  t.true(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
  t.regex(r.stdout, /Hypercast\s+raw uWS\s+ratio/);
  t.regex(r.stdout, /completeness %\s+100\.000\s+100\.000/);
  t.regex(r.stdout, /deliveries per second\s+[\d,]+\s+[\d,]+\s+(\d+\.\d+×|invalid)/);
});

test.serial("bench:cluster --smoke measures two Hypercast nodes and a uWS+Redis reference, completely", async (t) => {
  const r = await run("benchmarks/cluster.ts", {
    DATABASE_URL: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
  });
  t.true(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
  t.regex(r.stdout, /Hypercast\s+uWS\+Redis\s+ratio/);
  t.regex(r.stdout, /completeness %\s+100\.000\s+100\.000/);
  t.regex(r.stdout, /cross-node \(n1→Redis→n2\) p99 ms\s+[\d.,]+\s+[\d.,]+/);
});

test.serial(
  "bench:joins --smoke builds Hypercast, joins sockets into it and the raw uWS reference, and prints the costs and perf's breakdown",
  async (t) => {
    const perfDir = await mkdtemp(join(tmpdir(), "bench-perf-"));
    t.teardown(() => rm(perfDir, { recursive: true, force: true }));
    const r = await run(
      "benchmarks/joins.ts",
      { DATABASE_URL: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test" },
      ["--perf", perfDir],
    );
    t.true(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    t.regex(r.stdout, /Hypercast\s+raw uWS\s+ratio/);
    // A few hundred joins are below /proc's CPU resolution: the figure is "n/a" unless the machine was slow.
    t.regex(r.stdout, /server CPU µs per join, → 300\s+([\d.,]+|n\/a)\s+([\d.,]+|n\/a)/);
    t.regex(r.stdout, /RSS KiB per joined socket \(slope\)\s+-?[\d.,]+\s+-?[\d.,]+/);
    // Hypercast tells its young generation's size (/metrics); raw uWS does not.
    t.regex(r.stdout, /V8 young generation MiB at 300 sockets\s+[\d.,]+\s+n\/a/);
    t.regex(r.stdout, /RSS KiB per joined socket, the young generation's growth aside\s+-?[\d.,]+\s+n\/a/);
    t.regex(r.stdout, /perf: server CPU µs per join, by where each sample was \(phase 2 of every round/);
    t.regex(r.stdout, /\nall\s+[\d.]+\s+[\d.]+\n/);
  },
);

test.serial(
  "bench:joins:compare --smoke builds HEAD and the working tree, runs both at once and prints each round's CPU per join and the ratio",
  async (t) => {
    const r = await run("benchmarks/joins-compare.ts", {
      DATABASE_URL: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test",
    });
    t.true(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    t.regex(r.stdout, /base HEAD, change the working tree; both servers at once/);
    // 100 joins per server are below /proc's 10 ms ticks: a figure may read 0 or be far off, but it is printed.
    t.regex(
      r.stdout,
      /\n\s+1\s+-?[\d.]+ \(-?[\d.]+ \+ -?[\d.]+\)\s+-?[\d.]+ \(-?[\d.]+ \+ -?[\d.]+\)\s+(-?([\d.]+|Infinity)|NaN|INVALID)/,
    );
  },
);

test.serial(
  "bench:joins:compare --references callbacks --smoke runs raw uWS without and with JavaScript callbacks at once, with no database",
  async (t) => {
    const r = await run("benchmarks/joins-compare.ts", { DATABASE_URL: "" }, ["--references", "callbacks"]);
    t.true(r.code === 0 || r.code === 3, `exit ${r.code}: ${r.stderr}`);
    t.regex(r.stdout, /base raw uWS, change raw uWS with JavaScript callbacks; both servers at once/);
    t.regex(
      r.stdout,
      /\n\s+1\s+-?[\d.]+ \(-?[\d.]+ \+ -?[\d.]+\)\s+-?[\d.]+ \(-?[\d.]+ \+ -?[\d.]+\)\s+(-?([\d.]+|Infinity)|NaN|INVALID)/,
    );
  },
);

test("bench:joins:compare --references takes callbacks or control, and no --base or --change", async (t) => {
  const refs = await run("benchmarks/joins-compare.ts", {}, ["--references", "control", "--change", "HEAD"]);
  t.is(refs.code, 2);
  t.regex(refs.stderr, /--references compares two servers without Hypercast's code: it takes no --base or --change/);
  const mode = await run("benchmarks/joins-compare.ts", {}, ["--references", "fast"]);
  t.is(mode.code, 2);
  t.regex(mode.stderr, /--references takes callbacks or control, not fast/);
});
