/**
 * bench:joins' command line (benchmarks/joins.ts lists the flags): sizes and timings, smaller with
 * `--smoke`, and the PostgreSQL it runs Hypercast on, which must be on this machine (the benchmark
 * creates and drops a database there). A bad flag or value exits 2, saying which.
 *
 *     const options = readOptions()   // { first: 5000, total: 15000, rounds: 3, ramp: 2000, … }
 */
import { commandLine, isLoopbackPostgres, nodeFlags, positiveInt } from "../lib/options.ts";
import { withPerfFlag } from "../lib/perf.ts";

export interface JoinsOptions {
  /** Sockets joined in phase 1, and in all once phase 2 has joined the rest. */
  first: number;
  total: number;
  rounds: number;
  /** Joins per second of each load run. */
  ramp: number;
  /** Joins presence-tracked, not as audience. */
  presence: boolean;
  /** Where each Hypercast process writes a V8 CPU profile (`--profile`). */
  profileDir: string | undefined;
  /** Where `perf record` writes (`--perf`). */
  perfDir: string | undefined;
  /** Flags for node, the same for both servers (`--node-flags`, and perf's with `--perf`). */
  nodeFlags: string[];
  /** Seconds the server's idle CPU is measured for before phase 1. */
  idleSeconds: number;
  /** Seconds waited after start and after each phase before a reading. */
  settleSeconds: number;
  /** Seconds with nothing sent to a server before its idle RSS is read (see benchmarks/joins.ts). */
  idleRssAfterSeconds: number;
  maxSeconds: number;
  databaseUrl: string;
}

export function readOptions(): JoinsOptions {
  const {
    values: flags,
    usage,
    check,
  } = commandLine(
    "bench:joins",
    'DATABASE_URL=postgres://… npm run bench:joins -- [--first N] [--total N] [--rounds N] [--ramp JOINS_PER_S] [--settle S] [--idle-rss-after S] [--presence] [--profile DIR] [--perf DIR] [--node-flags="--flag …"] [--database-url URL] [--smoke] [--max-seconds S]',
    {
      first: { type: "string" },
      total: { type: "string" },
      rounds: { type: "string" },
      ramp: { type: "string" },
      settle: { type: "string" },
      "idle-rss-after": { type: "string" },
      smoke: { type: "boolean", default: false },
      presence: { type: "boolean", default: false },
      "database-url": { type: "string" },
      "max-seconds": { type: "string" },
      profile: { type: "string" },
      perf: { type: "string" },
      "node-flags": { type: "string" },
    },
  );
  const databaseUrl = flags["database-url"] ?? process.env["DATABASE_URL"] ?? "";
  if (!isLoopbackPostgres(databaseUrl))
    usage(
      "measures Hypercast on PostgreSQL: set DATABASE_URL to a loopback PostgreSQL (127.x, localhost, [::1]); the benchmark creates and drops a database there",
    );
  const smoke = flags.smoke ?? false;
  return check(() => {
    const first = positiveInt("first", flags.first, smoke ? 100 : 5_000);
    const total = positiveInt("total", flags.total, smoke ? 300 : 15_000);
    const rounds = positiveInt("rounds", flags.rounds, smoke ? 1 : 3);
    const ramp = positiveInt("ramp", flags.ramp, 2_000);
    const idleRssAfterSeconds = positiveInt("idle-rss-after", flags["idle-rss-after"], smoke ? 1 : 60);
    if (total <= first) throw new Error(`--total (${total}) must be more than --first (${first})`);
    return {
      first,
      total,
      rounds,
      ramp,
      presence: flags.presence ?? false,
      profileDir: flags.profile,
      perfDir: flags.perf,
      nodeFlags: withPerfFlag(nodeFlags(flags["node-flags"]), flags.perf),
      idleSeconds: smoke ? 1 : 5,
      settleSeconds: positiveInt("settle", flags.settle, smoke ? 1 : 3),
      idleRssAfterSeconds,
      maxSeconds: positiveInt(
        "max-seconds",
        flags["max-seconds"],
        rounds * 2 * (110 + idleRssAfterSeconds + (2 * total) / ramp) + 120,
      ),
      databaseUrl,
    };
  });
}
