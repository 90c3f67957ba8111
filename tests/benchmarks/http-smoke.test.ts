/**
 * A CI-sized run of `bench:http` (one short round, a few connections), so the harness keeps
 * working: its four servers start in their own processes, answer the same body, are loaded and
 * measured, and the summary comes out. No timing is judged here; the targets live in the
 * benchmark and the README. A run the harness itself marks INVALID (its generator saturated on
 * a busy machine) is still a working harness.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { runCommand, type CommandRun } from "../helpers/processes.ts";

const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

/** `npx ARGS` on DATABASE_URL, within the tests' bounds: its exit code and output. */
const npx = (args: string[]) => runCommand("npx", args, { env: { DATABASE_URL }, timeoutMs: 230_000 });

test.serial(
  "bench:http runs end to end on PostgreSQL (DATABASE_URL, else the local test database) and prints every target, its ratios and perf's breakdown",
  async (t) => {
    const perfDir = await mkdtemp(join(tmpdir(), "bench-perf-"));
    t.teardown(() => rm(perfDir, { recursive: true, force: true }));
    const args = [
      "tsx",
      "benchmarks/http.ts",
      "--duration",
      "1",
      "--warmup",
      "1",
      "--rounds",
      "1",
      "--connections",
      "4",
    ];
    // Every server gets the same node flags; node refuses to start on one it does not know.
    args.push("--node-flags=--max-semi-space-size=32");
    // The references prepare their statements as Hypercast does (by default they send them unprepared).
    args.push("--prepared-references");
    // Linux perf samples every core over the measured round (benchmarks/lib/perf.ts).
    args.push("--perf", perfDir);
    const { code, stdout, stderr } = await npx(args);
    const output = `${stdout}\n${stderr}`;
    t.false(output.includes("BROKEN"), output);
    t.true(code === 0 || code === 3, `exit ${code}: ${output}`);
    t.regex(stdout, /node flags {2}--max-semi-space-size=32 --perf-basic-prof for every server/, output);
    t.regex(stdout, /statements {2}Hypercast's prepared .*; the references' prepared alike/, output);
    const summary = stdout.slice(stdout.indexOf("medians of 1 rounds"));
    for (const label of [
      "reference: Koa+knex+pg",
      "peer: NestJS+Fastify",
      "Hypercast v2 (default)",
      "Hypercast v1 (Accept v1)",
    ]) {
      t.regex(
        summary,
        new RegExp(`${label.replace(/[()+]/g, "\\$&")}\\s+[\\d,]+ `),
        `no summary row for ${label}: ${output}`,
      );
    }
    // One column per target, every one of them sampled.
    t.regex(summary, /perf: server CPU µs per request/, output);
    t.regex(summary, /\nall\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\n/, output);
    t.regex(summary, /\nsystem calls\s+[\d.]+/, output);
    // And by function, for each target.
    const functions = await readFile(join(perfDir, "functions.txt"), "utf8");
    for (const target of ["reference", "peer", "v2", "v1"])
      t.regex(functions, new RegExp(`^${target} \\(CPU µs per unit of work\\)\\n +[\\d.]+ {2}\\S`, "m"), functions);
    if (code === 0) {
      t.regex(
        summary,
        /Hypercast v1 \(Accept v1\) +vs the reference [\d.]+x \([\d.]+x-[\d.]+x\) +vs the peer /,
        output,
      );
      t.regex(summary, /v2: req\/s [\d.]+x >= 0\.85x (PASS|FAIL)/, output);
    } else t.regex(summary, /INVALID: the load generator used more than/, output);
  },
);

/** `npx tsx benchmarks/http-compare.ts ARGS`. */
function compare(args: string[]): Promise<CommandRun> {
  return npx(["tsx", "benchmarks/http-compare.ts", ...args]);
}

test.serial(
  "bench:http:compare --smoke builds HEAD and the working tree, loads both at once and prints each one's CPU per request and the ratio",
  async (t) => {
    // A setting for one side reaches that server (a rate limit of its own shows in no figure, but
    // a bad one would stop the server from starting).
    const { code, stdout, stderr } = await compare(["--smoke", "--change-env", "API_RATE_LIMIT=999999999"]);
    const output = `${stdout}\n${stderr}`;
    t.false(output.includes("BROKEN"), output);
    t.true(code === 0 || code === 3, `exit ${code}: ${output}`);
    t.regex(stdout, /base HEAD, change the working tree with API_RATE_LIMIT=999999999; both servers at once/, output);
    t.regex(stdout, /\n {4}1 +[\d.]+ +[\d.]+ +[\d,]+ +[\d.]+ +[\d.]+ +[\d,]+ +([\d.]+|INVALID)/, output);
    if (code === 0)
      t.regex(stdout, /medians over 1 valid round\(s\): base [\d.]+ µs of server CPU per request/, output);
  },
);

test.serial(
  "bench:http:compare --against peer --smoke loads the NestJS peer and Hypercast at once and prints each one's CPU per request",
  async (t) => {
    const { code, stdout, stderr } = await compare(["--smoke", "--against", "peer"]);
    const output = `${stdout}\n${stderr}`;
    t.false(output.includes("BROKEN"), output);
    t.true(code === 0 || code === 3, `exit ${code}: ${output}`);
    t.regex(
      stdout,
      /base bench:http's peer \(NestJS on Fastify, statements prepared\), change the working tree;/,
      output,
    );
    t.regex(stdout, /\n {4}1 +[\d.]+ +[\d.]+ +[\d,]+ +[\d.]+ +[\d.]+ +[\d,]+ +([\d.]+|INVALID)/, output);
  },
);

test("bench:http:compare refuses a bad command line with exit 2 and says why", async (t) => {
  const odd = await compare(["--connections", "3"]);
  t.is(odd.code, 2);
  t.regex(odd.stderr, /--connections is split between two servers: give an even number/);
  const accept = await compare(["--accept", "v3"]);
  t.is(accept.code, 2);
  t.regex(accept.stderr, /--accept takes v1 or v2, not v3/);
  const env = await compare(["--change-env", "rate_limits=off"]);
  t.is(env.code, 2);
  t.regex(env.stderr, /--change-env expects NAME=value pairs such as RATE_LIMITS=off, got rate_limits=off/);
  const against = await compare(["--against", "fastify"]);
  t.is(against.code, 2);
  t.regex(against.stderr, /--against takes reference or peer, not fastify/);
  const both = await compare(["--against", "peer", "--base", "HEAD"]);
  t.is(both.code, 2);
  t.regex(both.stderr, /--against peer runs bench:http's peer as the base: it takes no --base or --base-env/);
  const ref = await compare(["--base", "no-such-ref-anywhere"]);
  t.is(ref.code, 2);
  t.regex(ref.stderr, /--base: no commit no-such-ref-anywhere/);
});
