/** The command-line options the benchmarks share (benchmarks/lib/options.ts). */
import test from "ava";
import { describeNodeFlags, isLoopbackPostgres, nodeFlags } from "../../benchmarks/lib/options.ts";
import { runCommand } from "../helpers/processes.ts";

test("--node-flags splits into node flags, none by default", (t) => {
  t.deepEqual(nodeFlags(undefined), []);
  t.deepEqual(nodeFlags("  "), []);
  t.deepEqual(nodeFlags("--max-semi-space-size=64  --no-opt"), ["--max-semi-space-size=64", "--no-opt"]);
  t.is(describeNodeFlags([]), "V8's defaults for every server");
  t.is(describeNodeFlags(["--max-semi-space-size=64"]), "--max-semi-space-size=64 for every server");
});

test("--node-flags refuses what is not a flag, naming it", (t) => {
  for (const bad of ["max-semi-space-size=64", "--max-semi-space-size=64 ./evil.js", "-e", "--Upper"])
    t.throws(() => nodeFlags(bad), { message: /--node-flags expects node flags/ });
});

/** `npx tsx SCRIPT ARGS` with a loopback DATABASE_URL (nothing connects to it before the flags are read). */
const bench = (script: string, args: readonly string[]) =>
  runCommand("npx", ["tsx", script, ...args], {
    env: { DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test" },
    timeoutMs: 60_000,
  });

/** Each benchmark the README names: its npm script (or its name), its file, and a value it refuses with the message it says. */
const BENCHMARKS = [
  [
    "bench:http",
    "benchmarks/http.ts",
    ["--rounds", "0"],
    /--rounds \(or BENCH_ROUNDS\) must be an integer from 1 to 50/,
  ],
  ["bench:http:compare", "benchmarks/http-compare.ts", ["--rounds", "0"], /--rounds expects a positive integer, got 0/],
  ["bench:ws", "benchmarks/ws.ts", ["--client", "curl"], /--client takes raw or ws, not curl/],
  ["bench:cluster", "benchmarks/cluster.ts", ["--rate", "fast"], /--rate expects a positive integer, got fast/],
  [
    "bench:joins",
    "benchmarks/joins.ts",
    ["--first", "10", "--total", "5"],
    /--total \(5\) must be more than --first \(10\)/,
  ],
  ["bench:joins:compare", "benchmarks/joins-compare.ts", ["--base-node-flags=-e"], /--node-flags expects node flags/],
  ["bench:dashboard", "benchmarks/dashboard.ts", ["--seconds", "1"], /--seconds must be 5–120, got 1/],
  // The scripts the README runs with npx.
  ["promises", "benchmarks/http/promises.ts", ["--connections", "0"], /--connections expects a positive integer/],
  ["statement-timer", "benchmarks/http/statement-timer.ts", ["--seconds=0"], /--seconds takes a number/],
  ["client-cost", "benchmarks/ws/client-cost.ts", ["--subscribers", "-"], /--subscribers expects a positive integer/],
] as const;

test("every benchmark prints its usage on --help, and refuses an unknown flag, a missing value or a bad value with exit 2 and no stack trace", async (t) => {
  await Promise.all(
    BENCHMARKS.map(async ([name, script, badValue, saysWhy]) => {
      const valued = name === "bench:dashboard" ? "--seconds" : "--rounds";
      const help = await bench(script, ["--help"]);
      t.is(help.code, 0, `${name} --help: ${help.stderr}`);
      t.true(
        help.stdout.startsWith("usage: ") &&
          help.stdout.includes(name.startsWith("bench:") ? `npm run ${name} -- [` : `npx tsx ${script} [`),
        `${name}: ${help.stdout}`,
      );
      for (const [args, message] of [
        [["--bogus"], /Unknown option '--bogus'\nusage: /],
        [[valued], new RegExp(`Option '${valued} <value>' argument missing\nusage: `)],
        [badValue, saysWhy],
      ] as const) {
        const run = await bench(script, args);
        t.is(run.code, 2, `${name} ${args.join(" ")}: ${run.stderr}`);
        t.regex(run.stderr, new RegExp(`^${name}: `), name);
        t.regex(run.stderr, message, `${name} ${args.join(" ")}`);
        t.notRegex(run.stderr, /\n\s+at /, `${name} ${args.join(" ")}: no stack trace`);
      }
    }),
  );
});

test("isLoopbackPostgres accepts a PostgreSQL on this machine only", (t) => {
  for (const url of [
    "postgres://postgres@127.0.0.1:5432/test",
    "postgresql://u:p@localhost/test",
    "postgres://postgres@[::1]:5432/test",
  ])
    t.true(isLoopbackPostgres(url), url);
  for (const url of [
    "postgres://db.example.com:5432/test",
    "mysql://127.0.0.1/test",
    "postgres://127.0.0.1.evil.com/x",
    "",
  ])
    t.false(isLoopbackPostgres(url), url);
});
