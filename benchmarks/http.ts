/**
 * HTTP benchmark (`npm run bench:http`): Hypercast's `GET /users/:id` with a bearer token, in v2
 * (the default) and v1 (`Accept: application/vnd.app.v1+json`), side by side in one run with
 * - the reference: a bare Koa + @koa/router + knex + pg server (references/koa-server.ts), and
 * - the peer: NestJS on Fastify doing the same work its own way (references/nest-server.ts),
 * each in a process of its own that loads none of Hypercast's code, with its own pool of 10,
 * sending the same two statements to the same seeded PostgreSQL schema and writing the same v2
 * body and headers.
 *
 * Method. Hypercast runs as in production (compiled by `npm run build`, under plain node; request
 * log at info, metrics, ETags, security headers, the rate limiter counting every request under a
 * limit too high to refuse), and the references are compiled alike (lib/compiled.ts); `--node-flags`
 * gives node flags to every server alike (none by default). Every
 * server is pinned to core 0 (`taskset`); the load generator (autocannon, the same for every
 * target) runs in its own process pinned to core 1. After a warm-up of each target, every round
 * runs each target once, the order rotated each round; reported are medians over rounds of
 * req/s, p50 and p99, and CPU per request of the server process and of its PostgreSQL backends
 * (all read from /proc, so nobody measures itself). A non-2xx answer or a connection error makes
 * the run BROKEN (exit 1). A run in which the generator used more than 90% of its core is
 * INVALID (exit 3): it measured the generator, so no ratio is printed. Otherwise the ratios are
 * printed with the targets (v1 and v2 each >= 0.85x the reference's req/s with p99 <= 1.2x, and
 * ahead of the peer); a missed target prints FAIL and still exits 0.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:http
 *     npm run bench:http -- --duration 5 --rounds 5 --connections 100
 *
 * Flags (or environment): --duration/BENCH_DURATION seconds per measured run (5),
 * --warmup/BENCH_WARMUP seconds per target (3), --rounds/BENCH_ROUNDS (5),
 * --connections/BENCH_CONNECTIONS (100), --log-level/BENCH_LOG_LEVEL Hypercast's LOG_LEVEL
 * (info; lines go to /dev/null), --profile DIR writes a V8 CPU profile of each server's process
 * (hypercast.cpuprofile, koa.cpuprofile, nest.cpuprofile), --perf DIR samples the servers with
 * Linux perf over the measured rounds and prints each target's CPU per request by where it went
 * (lib/perf.ts; every server then runs with --perf-basic-prof). Hypercast sends its two statements
 * prepared (lib/db/prepared.ts); the references send them as knex does by default, unprepared,
 * or prepared alike with --prepared-references.
 * PostgreSQL on this machine only (DATABASE_URL must be a loopback URL). Linux only.
 */
import { rm } from "node:fs/promises";
import os from "node:os";
import type { GeneratorResult, GeneratorRun } from "./lib/generator.ts";
import type { HypercastInfo } from "./lib/hypercast-server.ts";
import type { Target } from "./lib/load.ts";
import { LOG_LEVELS } from "../lib/settings.ts";
import { postgresCpu, withApplicationName } from "./lib/postgres-cpu.ts";
import { buildHypercast, compileEntry } from "./lib/compiled.ts";
import { commandLine, describeNodeFlags, nodeFlags } from "./lib/options.ts";
import { printPerf, startPerf, withPerfFlag, type PerfRecording, type PerfWindow } from "./lib/perf.ts";
import { startProcess, type BenchProcess } from "./lib/processes.ts";
import { checkTargets } from "./lib/http-check.ts";
import {
  printHeader,
  printSample,
  printSummary,
  TARGET_NAMES,
  type Options,
  type Sample,
  type TargetName,
} from "./lib/http-report.ts";

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
/** Above this share of its core the generator, not the server, set the pace. */
const GENERATOR_SATURATED = 0.9;
const PAUSE_BETWEEN_RUNS_MS = 250;
const REFERENCES = { koa: "koa-server.ts", nest: "nest-server.ts" } as const;

async function main(): Promise<number> {
  const options = readOptions();
  const budgetMs =
    120_000 + TARGET_NAMES.length * (options.warmupSeconds + options.rounds * options.seconds) * 1000 * 1.3;
  const started: Array<BenchProcess<unknown>> = [];
  const watchdog = setTimeout(() => {
    console.error(`bench:http: exceeded its ${Math.round(budgetMs / 1000)} s budget; stopping`);
    for (const p of started) p.child.kill("SIGKILL");
    process.exit(1);
  }, budgetMs);
  watchdog.unref();

  printHeader(options);
  // Every server compiled to plain JavaScript, as production runs it: Hypercast by `npm run build`
  // into a directory of this run's own, the entries and references by esbuild (lib/compiled.ts).
  const build = buildHypercast(`.bench/http-${process.pid}`);
  try {
    return await measureCompiled(options, build, started);
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

async function measureCompiled(
  options: Options,
  build: string,
  started: Array<BenchProcess<unknown>>,
): Promise<number> {
  const entries = {
    hypercast: await compileEntry(build, "benchmarks/lib/hypercast-server.ts"),
    koa: await compileEntry(build, `benchmarks/references/${REFERENCES.koa}`),
    nest: await compileEntry(build, `benchmarks/references/${REFERENCES.nest}`, {
      tsconfig: "benchmarks/references/tsconfig.json",
    }),
  };
  const url = options.databaseUrl;
  const hypercast = await startProcess<HypercastInfo>(entries.hypercast, {
    core: SERVER_CORE,
    args: [JSON.stringify({ databaseUrl: withApplicationName(url, "bench-hypercast"), logLevel: options.logLevel })],
    profileDir: options.profileDir,
    profileName: "hypercast.cpuprofile",
    nodeFlags: options.nodeFlags,
  });
  started.push(hypercast);
  const probe = await postgresCpu(url);
  let perf: PerfRecording | undefined;
  try {
    const { schema, token, userId } = hypercast.info;
    const reference = async (name: keyof typeof REFERENCES) => {
      const p = await startProcess<{ url: string }>(entries[name], {
        core: SERVER_CORE,
        args: [
          JSON.stringify({
            databaseUrl: withApplicationName(url, `bench-${name}`),
            schema,
            prepared: options.preparedReferences,
          }),
        ],
        profileDir: options.profileDir,
        profileName: `${name}.cpuprofile`,
        nodeFlags: options.nodeFlags,
      });
      started.push(p);
      return p;
    };
    const koa = await reference("koa");
    const nest = await reference("nest");
    const generator = await startProcess<Record<string, never>>(new URL("./lib/generator.ts", import.meta.url), {
      core: GENERATOR_CORE,
      args: [],
    });
    started.push(generator);
    console.log(
      `database    ${hypercast.info.database}, schema ${schema}, seeded by Hypercast; every server has its own pool of 10`,
    );
    console.log(`node flags  ${describeNodeFlags(options.nodeFlags)}`);
    console.log("");

    const authorization = `Bearer ${token}`;
    const path = `/users/${userId}`;
    const targets: Record<TargetName, { target: Target; server: BenchProcess<unknown>; backend: string }> = {
      reference: {
        target: { url: `${koa.info.url}${path}`, headers: { authorization } },
        server: koa,
        backend: "bench-koa",
      },
      // Nest routes a versioned controller only for a request that names a version.
      peer: {
        target: { url: `${nest.info.url}${path}`, headers: { authorization, accept: "application/json;v=2" } },
        server: nest,
        backend: "bench-nest",
      },
      v2: {
        target: { url: `${hypercast.info.url}${path}`, headers: { authorization } },
        server: hypercast,
        backend: "bench-hypercast",
      },
      v1: {
        target: {
          url: `${hypercast.info.url}${path}`,
          headers: { authorization, accept: "application/vnd.app.v1+json" },
        },
        server: hypercast,
        backend: "bench-hypercast",
      },
    };
    await checkTargets(
      { reference: targets.reference.target, peer: targets.peer.target, v2: targets.v2.target, v1: targets.v1.target },
      userId,
    );

    let nextId = 0;
    const load = (target: Target, seconds: number) =>
      new Promise<GeneratorResult>((resolve) => {
        const id = nextId++;
        const onMessage = (message: GeneratorResult) => {
          if (message.type !== "result" || message.id !== id) return;
          generator.child.off("message", onMessage);
          resolve(message);
        };
        generator.child.on("message", onMessage);
        generator.child.send({
          type: "run",
          id,
          target,
          seconds,
          connections: options.connections,
        } satisfies GeneratorRun);
      });

    const problems: string[] = [];
    const windows: PerfWindow[] = [];
    const measure = async (name: TargetName, seconds: number, measured = true): Promise<Sample> => {
      const { target, server, backend } = targets[name];
      const before = {
        server: server.cpuMicros(),
        generator: generator.cpuMicros(),
        postgres: await probe.sample(backend),
        at: performance.now(),
      };
      const from = process.hrtime.bigint();
      const run = await load(target, seconds);
      if (measured)
        windows.push({ target: name, pid: server.pid, from, to: process.hrtime.bigint(), work: run.requests });
      const wallMicros = (performance.now() - before.at) * 1000;
      const serverMicros = server.cpuMicros() - before.server;
      const generatorMicros = generator.cpuMicros() - before.generator;
      const postgresMicros = probe.since(before.postgres, await probe.sample(backend));
      if (run.failure !== undefined) problems.push(`${name}: the generator failed: ${run.failure}`);
      if (run.non2xx > 0 || run.errors > 0)
        problems.push(`${name}: ${run.non2xx} non-2xx responses, ${run.errors} connection errors/timeouts`);
      await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_RUNS_MS));
      const perRequest = (micros: number) => (run.requests === 0 ? Number.NaN : micros / run.requests);
      return {
        requestsPerSecond: run.requestsPerSecond,
        p50: run.p50 ?? Number.NaN,
        p99: run.p99 ?? Number.NaN,
        serverMicrosPerRequest: perRequest(serverMicros),
        postgresMicrosPerRequest: perRequest(postgresMicros),
        generatorShare: generatorMicros / wallMicros,
        serverShare: serverMicros / wallMicros,
      };
    };

    for (const name of TARGET_NAMES)
      printSample("warm-up", name, await measure(name, options.warmupSeconds, false), GENERATOR_SATURATED);
    if (options.perfDir !== undefined) perf = await startPerf(options.perfDir);
    const samples: Record<TargetName, Sample[]> = { reference: [], peer: [], v2: [], v1: [] };
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < TARGET_NAMES.length; i++) {
        const name = TARGET_NAMES[(i + round) % TARGET_NAMES.length]!;
        const sample = await measure(name, options.seconds);
        samples[name].push(sample);
        printSample(`round ${round + 1}/${options.rounds}`, name, sample, GENERATOR_SATURATED);
      }
    }
    const valid = printSummary(samples, options, GENERATOR_SATURATED);
    if (perf !== undefined) printPerf(await perf.stop(windows), TARGET_NAMES, "request", "the measured rounds");
    console.log(
      `load avg    ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} (1/5/15 min, at the end; other processes compete for the same cores)`,
    );
    if (problems.length > 0) {
      console.log("");
      console.log(`BROKEN: ${problems.join("; ")}`);
      return 1;
    }
    return valid ? 0 : 3;
  } finally {
    perf?.cancel();
    await probe.close();
    // The references first: Hypercast drops the schema they read.
    for (const p of started.reverse())
      await p.stop().catch((error: unknown) => console.error(`bench:http: ${String(error)}`));
  }
}

function readOptions(): Options {
  const { values, usage, check } = commandLine(
    "bench:http",
    'DATABASE_URL=postgres://… npm run bench:http -- [--duration S] [--warmup S] [--rounds N] [--connections N] [--log-level L] [--profile DIR] [--perf DIR] [--node-flags="--flag …"] [--prepared-references]',
    {
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      connections: { type: "string" },
      "log-level": { type: "string" },
      profile: { type: "string" },
      perf: { type: "string" },
      "node-flags": { type: "string" },
      "prepared-references": { type: "boolean" },
    },
  );
  const env = process.env;
  const databaseUrl = env["DATABASE_URL"] ?? "";
  if (databaseUrl === "")
    usage("DATABASE_URL must name a PostgreSQL database on this machine, e.g. postgres://postgres@127.0.0.1:5432/test");
  if (!isLoopback(databaseUrl))
    usage(`DATABASE_URL must point at a loopback host for a benchmark (got host ${safeHost(databaseUrl)})`);
  const logLevel = values["log-level"] ?? env["BENCH_LOG_LEVEL"] ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    usage(`--log-level (or BENCH_LOG_LEVEL) takes one of ${LOG_LEVELS.join(", ")}, not ${logLevel}`);
  return check(() => ({
    seconds: positiveInt("--duration", "BENCH_DURATION", values.duration ?? env["BENCH_DURATION"], 5, 600),
    warmupSeconds: positiveInt("--warmup", "BENCH_WARMUP", values.warmup ?? env["BENCH_WARMUP"], 3, 600),
    rounds: positiveInt("--rounds", "BENCH_ROUNDS", values.rounds ?? env["BENCH_ROUNDS"], 5, 50),
    connections: positiveInt(
      "--connections",
      "BENCH_CONNECTIONS",
      values.connections ?? env["BENCH_CONNECTIONS"],
      100,
      1000,
    ),
    logLevel,
    profileDir: values.profile,
    perfDir: values.perf,
    nodeFlags: withPerfFlag(nodeFlags(values["node-flags"]), values.perf),
    preparedReferences: values["prepared-references"] === true,
    databaseUrl,
  }));
}

function positiveInt(flag: string, variable: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new Error(`${flag} (or ${variable}) must be an integer from 1 to ${max}; got ${JSON.stringify(text)}`);
  }
  return n;
}

function isLoopback(url: string): boolean {
  const host = safeHost(url);
  return host === "localhost" || host === "[::1]" || host.startsWith("127.");
}

function safeHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return "(unparseable URL)";
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bench:http: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
