/**
 * bench:http:compare — does a change make a request cheaper? Two builds of Hypercast (a git ref, by
 * default HEAD, and the working tree) serve bench:http's `GET /users/:id` with a bearer token **at
 * the same time**, both pinned to core 0, each on a schema of its own in one PostgreSQL database;
 * one autocannon process on core 1 loads both at once, half the connections each. Each server's
 * CPU over those seconds (from `/proc`) is divided by the requests it answered, and so is its
 * PostgreSQL backends' (told apart by `application_name`). Every round starts both servers afresh,
 * swapping which one starts first, warms both up, then measures.
 *
 * Why not bench:http's rounds, one server after the other: on the shared machines this project
 * runs on, one build's CPU per request read anywhere from 225 to 314 µs in rounds of one evening,
 * far more than most changes to the request path are worth. Two servers measured in the same
 * seconds see the same machine (bench:joins:compare does the same for joins). Req/s is printed too, but the two servers
 * share one core, so each one's req/s depends on the other's: CPU per request is the figure.
 *
 *     npm run bench:http:compare                                  # HEAD against the working tree, 6 rounds
 *     npm run bench:http:compare -- --base main~3 --change main   # two commits
 *     npm run bench:http:compare -- --base HEAD --change HEAD     # the control: the same code twice
 *     npm run bench:http:compare -- --accept v1                   # v1 requests (Accept: application/vnd.app.v1+json)
 *     npm run bench:http:compare -- --change HEAD --change-env "RATE_LIMITS=off"   # what a feature costs
 *     npm run bench:http:compare -- --against peer                 # the working tree against the NestJS peer
 *     npm run bench:http:compare -- --perf /tmp/perf               # and where each one's CPU went (lib/perf.ts)
 *
 * `--against reference` or `--against peer` puts bench:http's bare Koa reference or its NestJS peer
 * (benchmarks/references/, their statements prepared as ours are) on the base side, in the same
 * seconds as Hypercast, on the schema Hypercast seeded: where bench:http's one-after-the-other
 * rounds cannot tell a few per cent apart, this can.
 *
 * The server entry (benchmarks/lib/hypercast-server.ts) is the working tree's, compiled against each side's
 * build, so a base older than the entry's imports cannot be compared.
 *
 * Exit 0 with every round valid, 3 when a round was not (its generator past 90 % of its core; the
 * round is left out of the medians), 1 on failure (a non-2xx answer or a connection error
 * included), 2 for a bad command line.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GeneratorResult, GeneratorRun } from "./lib/generator.ts";
import type { HypercastInfo, HypercastOptions } from "./lib/hypercast-server.ts";
import type { Target } from "./lib/load.ts";
import { compileEntry } from "./lib/compiled.ts";
import { commandLine, isLoopbackPostgres, nodeFlags, positiveInt, stopAfter } from "./lib/options.ts";
import { printPerf, startPerf, withPerfFlag, type PerfRecording, type PerfWindow } from "./lib/perf.ts";
import { postgresCpu, withApplicationName, type PostgresCpu } from "./lib/postgres-cpu.ts";
import { startProcess, type BenchProcess } from "./lib/processes.ts";
import { buildSide, commitOf, COMPARISON_OPTIONS } from "./lib/sides.ts";
import { machineLine, median } from "./ws/rounds.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
/** Above this share of its core the generator, not the servers, set the pace. */
const GENERATOR_SATURATED = 0.9;
const ACCEPT = { v1: "application/vnd.app.v1+json", v2: "application/vnd.app.v2+json" } as const;
/** bench:http's references (`--against`): their entries, and the Accept each asks v2 with. */
const REFERENCES = {
  reference: { source: "benchmarks/references/koa-server.ts", accept: ACCEPT.v2, tsconfig: undefined },
  // Nest routes a versioned controller only for a request that names a version.
  peer: {
    source: "benchmarks/references/nest-server.ts",
    accept: "application/json;v=2",
    tsconfig: "benchmarks/references/tsconfig.json",
  },
} as const;

/** What serves a side: a Hypercast build, or one of bench:http's references. */
type Kind = "hypercast" | keyof typeof REFERENCES;

interface Side {
  name: "base" | "change";
  kind: Kind;
  /** A git ref as given, and its commit; both undefined for the working tree. */
  ref: string | undefined;
  commit: string | undefined;
  flags: string[];
  /**
   * `--base-env`, `--change-env`: set in this side's server's environment and given to its settings
   * over the benchmark's own, so a setting (README, Configuration) or a switch read from the
   * environment differs between two servers of the same build.
   */
  env: Record<string, string>;
  /** The compiled server entry of this side's build. */
  entry: URL | undefined;
}

/** One side's figures in one round. */
interface Cost {
  server: number;
  postgres: number;
  requestsPerSecond: number;
}

const {
  values: flags,
  usage,
  check,
} = commandLine(
  "bench:http:compare",
  'npm run bench:http:compare -- [--base REF] [--change REF] [--against reference|peer] [--accept v1|v2] [--rounds N] [--duration S] [--warmup S] [--connections N (even)] [--base-env "NAME=value …"] [--change-env "NAME=value …"] [--base-node-flags="…"] [--change-node-flags="…"] [--perf DIR] [--database-url URL] [--smoke] [--max-seconds S]',
  {
    ...COMPARISON_OPTIONS,
    duration: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string" },
    accept: { type: "string" },
    "base-env": { type: "string" },
    "change-env": { type: "string" },
    against: { type: "string" },
    perf: { type: "string" },
  },
);

interface Options {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** Connections to each server. */
  connections: number;
  accept: keyof typeof ACCEPT;
  maxSeconds: number;
  nodeFlags: { base: string[]; change: string[] };
  env: { base: Record<string, string>; change: Record<string, string> };
}

/** `--change-env "RATE_LIMITS=off LOG_LEVEL=warn"`: Hypercast's settings (README, Configuration) for one side. */
function settings(flag: string, value: string | undefined): Record<string, string> {
  const pairs = (value ?? "").split(/\s+/).filter((pair) => pair !== "");
  const bad = pairs.find((pair) => !/^[A-Z][A-Z0-9_]*=\S*$/.test(pair));
  if (bad !== undefined) throw new Error(`--${flag} expects NAME=value pairs such as RATE_LIMITS=off, got ${bad}`);
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

function readOptions(): Options {
  const smoke = flags.smoke ?? false;
  return check(() => {
    const rounds = positiveInt("rounds", flags.rounds, smoke ? 1 : 6);
    const seconds = positiveInt("duration", flags.duration, smoke ? 1 : 5);
    const warmupSeconds = positiveInt("warmup", flags.warmup, smoke ? 1 : 3);
    const connections = positiveInt("connections", flags.connections, smoke ? 4 : 100);
    if (connections % 2 !== 0) throw new Error(`--connections is split between two servers: give an even number`);
    const accept = flags.accept ?? "v2";
    if (accept !== "v1" && accept !== "v2") throw new Error(`--accept takes v1 or v2, not ${accept}`);
    // Both builds, then per round two servers started and seeded, the warm-up and the window.
    const maxSeconds = positiveInt("max-seconds", flags["max-seconds"], 300 + rounds * (60 + warmupSeconds + seconds));
    // With --perf DIR, node writes the maps perf names JavaScript frames from, on both sides alike.
    const base = withPerfFlag(nodeFlags(flags["base-node-flags"]), flags.perf);
    const change = withPerfFlag(nodeFlags(flags["change-node-flags"]), flags.perf);
    const env = { base: settings("base-env", flags["base-env"]), change: settings("change-env", flags["change-env"]) };
    return {
      rounds,
      seconds,
      warmupSeconds,
      connections: connections / 2,
      accept,
      maxSeconds,
      nodeFlags: { base, change },
      env,
    };
  });
}

const options = readOptions();
const databaseUrl = flags["database-url"] ?? process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
if (!isLoopbackPostgres(databaseUrl))
  usage("DATABASE_URL must name a loopback PostgreSQL (its backends' CPU is read from /proc)");

/** `--against reference|peer`: bench:http's reference or peer as the base, Hypercast as the change. */
const against = flags.against;
const baseKind: Kind =
  against === undefined
    ? "hypercast"
    : against === "reference" || against === "peer"
      ? against
      : usage(`--against takes reference or peer, not ${against}`);
if (against !== undefined && (flags.base !== undefined || flags["base-env"] !== undefined))
  usage(`--against ${against} runs bench:http's ${against} as the base: it takes no --base or --base-env`);
const baseRef = against === undefined ? (flags.base ?? "HEAD") : undefined;
const sides: [Side, Side] = [
  {
    name: "base",
    kind: baseKind,
    ref: baseRef,
    commit: commitOf("base", baseRef, usage),
    flags: options.nodeFlags.base,
    env: options.env.base,
    entry: undefined,
  },
  {
    name: "change",
    kind: "hypercast",
    ref: flags.change,
    commit: commitOf("change", flags.change, usage),
    flags: options.nodeFlags.change,
    env: options.env.change,
    entry: undefined,
  },
];
const WORK = `.bench/http-compare-${process.pid}`;
const running = new Set<BenchProcess<unknown>>();
const cleanUp = async () => {
  // The servers drop their schemas as they stop.
  await Promise.allSettled([...running].map((p) => p.stop()));
  await rm(join(ROOT, WORK), { recursive: true, force: true });
};
const hardStop = stopAfter("bench:http:compare", options.maxSeconds, async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await rm(join(ROOT, WORK), { recursive: true, force: true });
});

/** A side's server, running, and the request it is loaded with. */
interface Server {
  process: BenchProcess<unknown>;
  target: Target;
}

/**
 * Both servers afresh, `order[0]` first, each with a backend name of its side's. A Hypercast seeds
 * a schema of its own; a reference (`--against`) starts after it, on its schema and its viewer's token.
 */
async function startServers(order: [Side, Side]): Promise<Map<Side, Server>> {
  const servers = new Map<Side, Server>();
  let seeded: HypercastInfo | undefined;
  const hypercastsFirst = [...order].sort((a, b) => Number(a.kind !== "hypercast") - Number(b.kind !== "hypercast"));
  for (const side of hypercastsFirst) {
    const url = withApplicationName(databaseUrl, `bench-${side.name}`);
    const common = { core: SERVER_CORE, nodeFlags: side.flags, env: side.env };
    if (side.kind === "hypercast") {
      const own: HypercastOptions = { databaseUrl: url, logLevel: "info", env: side.env };
      const server = await startProcess<HypercastInfo>(side.entry!, { ...common, args: [JSON.stringify(own)] });
      running.add(server);
      seeded = server.info;
      servers.set(side, { process: server, target: targetOf(server.info, server.info, ACCEPT[options.accept]) });
    } else {
      const { schema } = seeded!;
      const args = [JSON.stringify({ databaseUrl: url, schema, prepared: true })];
      const server = await startProcess<{ url: string }>(side.entry!, { ...common, args });
      running.add(server);
      servers.set(side, { process: server, target: targetOf(server.info, seeded!, REFERENCES[side.kind].accept) });
    }
  }
  return servers;
}

/** `GET /users/:id` of the seeded user, with the seeded viewer's token. */
function targetOf(server: { url: string }, seeded: HypercastInfo, accept: string): Target {
  return {
    url: `${server.url}/users/${seeded.userId}`,
    headers: { authorization: `Bearer ${seeded.token}`, accept },
  };
}

/** The references first: a Hypercast drops the schema they read. */
async function stopServers(servers: Map<Side, Server>): Promise<void> {
  const last = [...servers].sort(([a], [b]) => Number(a.kind === "hypercast") - Number(b.kind === "hypercast"));
  for (const [, server] of last) {
    await server.process.stop();
    running.delete(server.process);
  }
}

/** Runs one load per server at once on the generator; resolves to each one's result. */
function loadBoth(
  generator: BenchProcess<unknown>,
  servers: Map<Side, Server>,
  seconds: number,
): Promise<Map<Side, GeneratorResult>> {
  let id = 0;
  const runs = [...servers].map(([side, server]) => {
    const run: GeneratorRun = {
      type: "run",
      id: id++,
      target: server.target,
      seconds,
      connections: options.connections,
    };
    return new Promise<[Side, GeneratorResult]>((resolve) => {
      const onMessage = (message: GeneratorResult) => {
        if (message.type !== "result" || message.id !== run.id) return;
        generator.child.off("message", onMessage);
        resolve([side, message]);
      };
      generator.child.on("message", onMessage);
      generator.child.send(run);
    });
  });
  return Promise.all(runs).then((results) => new Map(results));
}

/** A run's non-2xx answers and errors: a harness that answers wrongly measures nothing. */
function problemsOf(results: Map<Side, GeneratorResult>): string[] {
  return [...results].flatMap(([side, run]) => [
    ...(run.failure === undefined ? [] : [`${side.name}: the generator failed: ${run.failure}`]),
    ...(run.non2xx > 0 || run.errors > 0
      ? [`${side.name}: ${run.non2xx} non-2xx responses, ${run.errors} connection errors/timeouts`]
      : []),
  ]);
}

async function round(
  order: [Side, Side],
  generator: BenchProcess<unknown>,
  probe: PostgresCpu,
  windows: PerfWindow[],
): Promise<{ costs: Map<Side, Cost>; generatorShare: number }> {
  const servers = await startServers(order);
  try {
    const warm = problemsOf(await loadBoth(generator, servers, options.warmupSeconds));
    if (warm.length > 0) throw new Error(`BROKEN in the warm-up: ${warm.join("; ")}`);
    const backends = (side: Side) => probe.sample(`bench-${side.name}`);
    const before = new Map<Side, { server: number; postgres: Awaited<ReturnType<PostgresCpu["sample"]>> }>();
    for (const [side, server] of servers)
      before.set(side, { server: server.process.cpuMicros(), postgres: await backends(side) });
    const generatorBefore = generator.cpuMicros();
    const from = performance.now();
    const fromNs = process.hrtime.bigint();
    const results = await loadBoth(generator, servers, options.seconds);
    const toNs = process.hrtime.bigint();
    const wallMicros = (performance.now() - from) * 1000;
    for (const [side, server] of servers)
      windows.push({
        target: side.name,
        pid: server.process.pid,
        from: fromNs,
        to: toNs,
        work: results.get(side)!.requests,
      });
    const generatorShare = (generator.cpuMicros() - generatorBefore) / wallMicros;
    const costs = new Map<Side, Cost>();
    for (const [side, server] of servers) {
      const run = results.get(side)!;
      const start = before.get(side)!;
      costs.set(side, {
        server: (server.process.cpuMicros() - start.server) / run.requests,
        postgres: probe.since(start.postgres, await backends(side)) / run.requests,
        requestsPerSecond: run.requestsPerSecond,
      });
    }
    const problems = problemsOf(results);
    if (problems.length > 0) throw new Error(`BROKEN: ${problems.join("; ")}`);
    return { costs, generatorShare };
  } finally {
    await stopServers(servers);
  }
}

const NAMES: Record<Kind, string> = {
  hypercast: "",
  reference: "bench:http's reference (Koa + knex + pg, statements prepared)",
  peer: "bench:http's peer (NestJS on Fastify, statements prepared)",
};
const describe = (side: Side) => {
  const settings = Object.entries(side.env).map(([name, value]) => `${name}=${value}`);
  const extras = [...side.flags, ...settings];
  const code = side.kind === "hypercast" ? (side.ref ?? "the working tree") : NAMES[side.kind];
  return `${code}${extras.length > 0 ? ` with ${extras.join(" ")}` : ""}`;
};
/** A side's figures in a round: server µs/req, PostgreSQL's, req/s, in a column of its own. */
const cell = (c: Cost) =>
  `${c.server.toFixed(1).padStart(7)} ${c.postgres.toFixed(1).padStart(6)} ${Math.round(c.requestsPerSecond).toLocaleString("en-US").padStart(7)}`.padEnd(
    34,
  );

let exitCode = 0;
let generator: BenchProcess<unknown> | undefined;
let probe: PostgresCpu | undefined;
let perf: PerfRecording | undefined;
try {
  console.log(
    `bench:http:compare: base ${describe(sides[0])}, change ${describe(sides[1])}; both servers at once on core ${SERVER_CORE}, ` +
      `autocannon on core ${GENERATOR_CORE}, ${options.connections} connections each, GET /users/:id in ${options.accept}; ${machineLine()}`,
  );
  for (const side of sides) {
    if (side.kind === "hypercast") {
      const build = buildSide(`${WORK}/${side.name}`, side.commit, side.ref);
      side.entry = await compileEntry(build, "benchmarks/lib/hypercast-server.ts");
    } else {
      const { source, tsconfig } = REFERENCES[side.kind];
      side.entry = await compileEntry(`${WORK}/${side.name}`, source, tsconfig === undefined ? {} : { tsconfig });
    }
  }
  probe = await postgresCpu(databaseUrl);
  generator = await startProcess<Record<string, never>>(new URL("./lib/generator.ts", import.meta.url), {
    core: GENERATOR_CORE,
    args: [],
  });
  running.add(generator);
  const windows: PerfWindow[] = [];
  if (flags.perf !== undefined) perf = await startPerf(flags.perf);
  const kept: Array<{ base: Cost; change: Cost }> = [];
  console.log(
    `\nround  ${"base: server, PG µs/req; req/s".padEnd(34)}${"change: server, PG µs/req; req/s".padEnd(34)}change/base (server CPU)`,
  );
  for (let r = 0; r < options.rounds; r++) {
    const order: [Side, Side] = r % 2 === 0 ? [sides[0], sides[1]] : [sides[1], sides[0]];
    const { costs, generatorShare } = await round(order, generator, probe, windows);
    const base = costs.get(sides[0])!;
    const change = costs.get(sides[1])!;
    const valid = generatorShare <= GENERATOR_SATURATED;
    console.log(
      `${String(r + 1).padStart(5)}  ${cell(base)}${cell(change)}${
        valid
          ? (change.server / base.server).toFixed(3)
          : `INVALID: the generator used ${Math.round(generatorShare * 100)} % of its core`
      }`,
    );
    if (!valid) {
      exitCode = 3;
      continue;
    }
    kept.push({ base, change });
  }
  if (kept.length === 0) {
    console.error("INVALID: no round was valid; no ratio");
  } else {
    const ratios = kept.map((k) => k.change.server / k.base.server);
    const m = (pick: (k: { base: Cost; change: Cost }) => number) => median(kept.map(pick));
    console.log(
      `\nmedians over ${kept.length} valid round(s): base ${m((k) => k.base.server).toFixed(1)} µs of server CPU per request ` +
        `(PostgreSQL ${m((k) => k.base.postgres).toFixed(1)}), change ${m((k) => k.change.server).toFixed(1)} ` +
        `(PostgreSQL ${m((k) => k.change.postgres).toFixed(1)}); change/base ${median(ratios).toFixed(3)}, ` +
        `lower in ${ratios.filter((ratio) => ratio < 1).length} of ${ratios.length} rounds; ` +
        `PostgreSQL change/base ${m((k) => k.change.postgres / k.base.postgres).toFixed(3)}`,
    );
    console.log(
      "read it beside a control run on this machine (--base HEAD --change HEAD), whose rounds show its spread",
    );
  }
  // Every round's window, the invalid ones included: perf says where the CPU went, not a ratio.
  if (perf !== undefined) printPerf(await perf.stop(windows), ["base", "change"], "request", "every measured window");
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  perf?.cancel();
  await probe?.close().catch(() => undefined);
  await cleanUp();
  clearTimeout(hardStop);
}
process.exit(exitCode);
