/**
 * What a timer per statement costs knex + pg, with nothing of Hypercast loaded: 100 callers share
 * a pool of 10 and each runs the HTTP benchmark's shape of work, two statements one after the
 * other, as fast as the database answers. Three variants, each in a fresh node process so V8
 * starts from the same state, in rotated order over several rounds:
 *
 * - `plain`: knex's defaults;
 * - `query_timeout`: pg's `query_timeout: 30000` (a 30 s timer armed and cleared per statement);
 * - `query_timeout, no pretenuring`: the same under `--no-allocation-site-pretenuring`, which
 *   tells whether V8's pretenuring is what the timer sets off.
 *
 * Printed per variant (medians over rounds): requests per second, scavenges and their mean pause,
 * and mark-compacts, read with `PerformanceObserver` inside the process. lib/db/deadline.ts says
 * why Hypercast's statement deadline polls instead of arming such a timer.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx benchmarks/http/statement-timer.ts
 *     npx tsx benchmarks/http/statement-timer.ts --seconds 6 --rounds 3
 */
import { fork } from "node:child_process";
import { constants, PerformanceObserver } from "node:perf_hooks";
import knex from "knex";
import { commandLine, isLoopbackPostgres, positiveInt } from "../lib/options.ts";

interface Sample {
  requests: number;
  seconds: number;
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
}

const VARIANTS = [
  { name: "plain", queryTimeout: false, flags: [] as string[] },
  { name: "query_timeout", queryTimeout: true, flags: [] as string[] },
  { name: "query_timeout, no pretenuring", queryTimeout: true, flags: ["--no-allocation-site-pretenuring"] },
];

const CALLERS = 100;
const POOL = 10;

if (process.argv[2] === "--child") await child(JSON.parse(process.argv[3] ?? "{}"));
else await main();

async function main(): Promise<void> {
  const { values, usage, check } = commandLine(
    "statement-timer",
    "DATABASE_URL=postgres://…@127.0.0.1:5432/… npx tsx benchmarks/http/statement-timer.ts [--seconds S] [--rounds N]",
    { seconds: { type: "string" }, rounds: { type: "string" } },
  );
  const seconds = Number(values.seconds ?? 6);
  if (!(seconds > 0 && seconds <= 600)) usage(`--seconds takes a number of seconds up to 600, got ${values.seconds}`);
  const rounds = check(() => positiveInt("rounds", values.rounds, 3));
  const databaseUrl = process.env["DATABASE_URL"] ?? "";
  if (!isLoopbackPostgres(databaseUrl)) usage("DATABASE_URL must name a loopback PostgreSQL");
  const samples = new Map<string, Sample[]>(VARIANTS.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const variant = VARIANTS[(i + round) % VARIANTS.length]!;
      const sample = await runChild(variant.flags, { databaseUrl, seconds, queryTimeout: variant.queryTimeout });
      samples.get(variant.name)!.push(sample);
      console.log(`round ${round + 1}/${rounds}  ${describe(variant.name, [sample])}`);
    }
  }
  console.log(`\nmedians of ${rounds} rounds (${CALLERS} callers, pool of ${POOL}, ${seconds} s each)`);
  for (const [name, list] of samples) console.log(describe(name, list));
}

function describe(name: string, list: Sample[]): string {
  const perSecond = median(list.map((s) => s.requests / s.seconds));
  const pause = median(list.map((s) => s.scavengeMs / Math.max(1, s.scavenges)));
  const scavenges = median(list.map((s) => s.scavenges));
  const markCompacts = median(list.map((s) => s.markCompacts));
  return `${name.padEnd(30)} ${Math.round(perSecond).toLocaleString("en").padStart(6)} req/s  scavenges ${String(scavenges).padStart(4)}, mean pause ${pause.toFixed(2)} ms  mark-compacts ${markCompacts}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function runChild(flags: string[], options: ChildOptions): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const worker = fork(new URL(import.meta.url), ["--child", JSON.stringify(options)], {
      execArgv: ["--import", "tsx", ...flags],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let sample: Sample | undefined;
    worker.on("message", (message: Sample) => (sample = message));
    worker.on("error", reject);
    worker.on("exit", (code) =>
      code === 0 && sample !== undefined ? resolve(sample) : reject(new Error(`variant exited with ${code}`)),
    );
  });
}

interface ChildOptions {
  databaseUrl: string;
  seconds: number;
  queryTimeout: boolean;
}

async function child(options: ChildOptions): Promise<void> {
  const db = knex({
    client: "pg",
    connection: { connectionString: options.databaseUrl, ...(options.queryTimeout ? { query_timeout: 30_000 } : {}) },
    pool: { min: 0, max: POOL },
  });
  const request = async () => {
    const first = await db("pg_type").where({ oid: 23 }).first("oid", "typname", "typlen");
    const second = await db("pg_type").where({ oid: 25 }).first();
    return first !== undefined && second !== undefined;
  };
  const run = async (ms: number) => {
    const until = performance.now() + ms;
    let requests = 0;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < until) if (await request()) requests++;
      }),
    );
    return requests;
  };
  await run(1500); // warm-up: connections open, code optimised
  const gc = { scavenges: 0, scavengeMs: 0, markCompacts: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.scavenges++;
        gc.scavengeMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.markCompacts++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  const requests = await run(options.seconds * 1000);
  observer.disconnect();
  await db.destroy();
  process.send!({ requests, seconds: options.seconds, ...gc } satisfies Sample);
}
