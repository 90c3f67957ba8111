/**
 * HTTP throughput benchmark (`npm run bench:http`): Hypercast's `GET /users/:id` in v1
 * (`Accept: application/vnd.app.v1+json`) and v2 (the default) against a bare Koa + knex
 * baseline doing the same two queries (see lib/baseline.ts), in one run, on one database.
 *
 * Method. Both servers live in one child process on one knex instance (which also makes a
 * shared in-memory PGlite possible); autocannon drives them from this process, so on a
 * two-core machine the servers and the load generator each have a core. Each target gets a
 * warm-up, then several rounds run every target once, the order rotated each round so no
 * target always follows the same one. Reported: medians across rounds of req/s, p50 and p99
 * latency, and the server process's CPU time per request; each versioned endpoint's req/s
 * as a share of the baseline's, judged against TARGET_RATIO. A miss prints FAIL and still
 * exits 0; only a broken run (a non-2xx answer, a connection error, a crash) exits 1.
 *
 *     npm run bench:http
 *     npm run bench:http -- --duration 10 --rounds 5 --connections 20
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:http
 *
 * Flags (or environment): --duration/BENCH_DURATION seconds per measured run (6),
 * --warmup/BENCH_WARMUP seconds per target (3), --rounds/BENCH_ROUNDS (5),
 * --connections/BENCH_CONNECTIONS (10), --log-level/BENCH_LOG_LEVEL Hypercast's LOG_LEVEL
 * (info, as `npm start`; lines go to /dev/null), --profile DIR writes a V8 CPU profile of
 * the server process. Loopback only.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import { median, percentile, runLoad, type Target } from "./lib/load.ts";
import { startServerProcess, type ServerInfo, type ServerProcess } from "./lib/server-process.ts";

/** Each versioned endpoint must keep at least this share of the baseline's throughput. */
const TARGET_RATIO = 0.85;
const PAUSE_BETWEEN_RUNS_MS = 250;

interface Options {
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  connections: number;
  logLevel: string;
  profileDir: string | undefined;
  databaseUrl: string | undefined;
}

type TargetName = "baseline" | "v2" | "v1";

interface Sample {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  cpuMicrosPerRequest: number;
}

const LABELS: Record<TargetName, string> = {
  baseline: "baseline (Koa + knex)",
  v2: "Hypercast v2 (default)",
  v1: "Hypercast v1 (Accept v1)",
};

async function main(): Promise<number> {
  const options = readOptions();
  const budgetMs = 90_000 + 3 * (options.warmupSeconds + options.rounds * options.seconds) * 1000 * 1.25;
  let servers: ServerProcess | undefined;
  const watchdog = setTimeout(() => {
    console.error(`bench:http: exceeded its ${Math.round(budgetMs / 1000)} s budget; stopping`);
    servers?.kill();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();

  printHeader(options);
  servers = await startServerProcess({ databaseUrl: options.databaseUrl, logLevel: options.logLevel, profileDir: options.profileDir });
  try {
    const info = servers.info;
    console.log(`database    ${info.database}; one knex instance shared by both servers`);
    console.log("");
    const targets = buildTargets(info);
    await checkTargets(targets, info);

    const problems: string[] = [];
    const measure = async (name: TargetName, seconds: number): Promise<Sample> => {
      const before = await servers!.cpuUsage();
      const run = await runLoad(targets[name], { seconds, connections: options.connections });
      const cpu = (await servers!.cpuUsage()) - before;
      if (run.non2xx > 0 || run.errors > 0) {
        problems.push(`${name}: ${run.non2xx} non-2xx responses, ${run.errors} connection errors/timeouts`);
      }
      await sleep(PAUSE_BETWEEN_RUNS_MS);
      return {
        requestsPerSecond: run.requestsPerSecond,
        p50: percentile(run.latencies, 0.5),
        p99: percentile(run.latencies, 0.99),
        cpuMicrosPerRequest: run.requests === 0 ? Number.NaN : cpu / run.requests,
      };
    };

    const order: TargetName[] = ["baseline", "v2", "v1"];
    for (const name of order) {
      const warm = await measure(name, options.warmupSeconds);
      printSample(`warm-up`, name, warm);
    }
    const samples: Record<TargetName, Sample[]> = { baseline: [], v2: [], v1: [] };
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < order.length; i++) {
        const name = order[(i + round) % order.length]!;
        const sample = await measure(name, options.seconds);
        samples[name].push(sample);
        printSample(`round ${round + 1}/${options.rounds}`, name, sample);
      }
    }
    printSummary(samples, options.rounds);
    console.log(`load avg    ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min, at the end; other processes compete for the same cores)`);

    if (problems.length > 0) {
      console.log("");
      console.log(`BROKEN: ${problems.join("; ")}`);
      return 1;
    }
    return 0;
  } finally {
    await servers.stop();
  }
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      connections: { type: "string" },
      "log-level": { type: "string" },
      profile: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) {
    console.log("usage: npm run bench:http -- [--duration S] [--warmup S] [--rounds N] [--connections N] [--log-level L] [--profile DIR]");
    process.exit(0);
  }
  const env = process.env;
  const databaseUrl = env["DATABASE_URL"] === "" ? undefined : env["DATABASE_URL"];
  if (databaseUrl !== undefined && !isLoopback(databaseUrl)) {
    throw new Error(`DATABASE_URL must point at a loopback host for a benchmark (got host ${safeHost(databaseUrl)})`);
  }
  return {
    seconds: positiveInt("--duration", "BENCH_DURATION", values.duration ?? env["BENCH_DURATION"], 6, 600),
    warmupSeconds: positiveInt("--warmup", "BENCH_WARMUP", values.warmup ?? env["BENCH_WARMUP"], 3, 600),
    rounds: positiveInt("--rounds", "BENCH_ROUNDS", values.rounds ?? env["BENCH_ROUNDS"], 5, 50),
    connections: positiveInt("--connections", "BENCH_CONNECTIONS", values.connections ?? env["BENCH_CONNECTIONS"], 10, 1000),
    logLevel: values["log-level"] ?? env["BENCH_LOG_LEVEL"] ?? "info",
    profileDir: values.profile,
    databaseUrl,
  };
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

function buildTargets(info: ServerInfo): Record<TargetName, Target> {
  const authorization = `Bearer ${info.token}`;
  return {
    baseline: { url: `${info.baselineUrl}/users/${info.userId}`, headers: { authorization } },
    v2: { url: `${info.hypercastUrl}/users/${info.userId}`, headers: { authorization } },
    v1: { url: `${info.hypercastUrl}/users/${info.userId}`, headers: { authorization, accept: "application/vnd.app.v1+json" } },
  };
}

/** Makes sure every target answers what we mean to measure before timing anything. */
async function checkTargets(targets: Record<TargetName, Target>, info: ServerInfo): Promise<void> {
  const get = async (name: TargetName) => {
    const res = await fetch(targets[name].url, { headers: { ...targets[name].headers, connection: "close" } });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200 || body["id"] !== info.userId) {
      throw new Error(`${name} answered ${res.status} ${JSON.stringify(body)}; expected 200 with user ${info.userId}`);
    }
    return { type: res.headers.get("content-type") ?? "", deprecation: res.headers.get("deprecation"), body };
  };
  const v2 = await get("v2");
  if (!v2.type.startsWith("application/vnd.app.v2+json") || !Array.isArray(v2.body["favorite_sports"]) || !("_links" in v2.body)) {
    throw new Error(`v2 answered ${v2.type} ${JSON.stringify(v2.body)}; expected a v2 user with _links`);
  }
  const v1 = await get("v1");
  if (!v1.type.startsWith("application/vnd.app.v1+json") || !("favorite_sport" in v1.body) || v1.deprecation === null) {
    throw new Error(`v1 answered ${v1.type} ${JSON.stringify(v1.body)}; expected a deprecated v1 user`);
  }
  await get("baseline");
}

function printHeader(options: Options): void {
  const cpus = os.cpus();
  const autocannonVersion = packageVersion("autocannon");
  console.log("Hypercast HTTP benchmark: GET /users/:id with a bearer token");
  console.log(`date        ${new Date().toISOString()}`);
  console.log(`machine     ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} cores (available parallelism ${os.availableParallelism()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()} ${os.arch()}`);
  console.log(`load avg    ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1/5/15 min, before start)`);
  console.log(`node        ${process.version}, autocannon ${autocannonVersion}`);
  console.log(`servers     one child process: Hypercast (startServer, LOG_LEVEL=${options.logLevel}, log to /dev/null) and the baseline; autocannon in this process`);
  console.log(`load        ${options.connections} connections, pipelining 1; warm-up ${options.warmupSeconds} s per target; ${options.rounds} rounds x ${options.seconds} s per target, order rotated each round`);
}

function printSample(phase: string, name: TargetName, s: Sample): void {
  console.log(
    `${phase.padEnd(11)} ${name.padEnd(9)} ${fmtInt(s.requestsPerSecond).padStart(7)} req/s  p50 ${fmtMs(s.p50)} ms  p99 ${fmtMs(s.p99)} ms  server CPU ${fmtInt(s.cpuMicrosPerRequest)} us/req`,
  );
}

function printSummary(samples: Record<TargetName, Sample[]>, rounds: number): void {
  const baseline = median(samples.baseline.map((s) => s.requestsPerSecond));
  const baselineCpu = median(samples.baseline.map((s) => s.cpuMicrosPerRequest));
  console.log("");
  console.log(`medians of ${rounds} rounds`);
  console.log(`${"target".padEnd(26)} ${"req/s".padStart(7)} ${"(min-max)".padStart(15)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"CPU us/req".padStart(10)} ${"CPU vs base".padStart(11)} ${"vs baseline".padStart(11)}`);
  const verdicts: string[] = [];
  for (const name of ["baseline", "v2", "v1"] as const) {
    const list = samples[name];
    const rps = list.map((s) => s.requestsPerSecond);
    const rate = median(rps);
    const ratio = rate / baseline;
    const cpu = median(list.map((s) => s.cpuMicrosPerRequest));
    let verdict = "";
    if (name !== "baseline") {
      const pass = ratio >= TARGET_RATIO;
      verdict = pass ? "  PASS" : "  FAIL";
      verdicts.push(`${name} ${pass ? "PASS" : "FAIL"} (${fmtPct(ratio)})`);
    }
    console.log(
      `${LABELS[name].padEnd(26)} ${fmtInt(rate).padStart(7)} ${`(${fmtInt(Math.min(...rps))}-${fmtInt(Math.max(...rps))})`.padStart(15)} ${fmtMs(median(list.map((s) => s.p50))).padStart(7)} ${fmtMs(median(list.map((s) => s.p99))).padStart(7)} ${fmtInt(cpu).padStart(10)} ${fmtPct(baselineCpu / cpu).padStart(11)} ${fmtPct(ratio).padStart(11)}${verdict}`,
    );
  }
  const overall = verdicts.every((v) => v.includes("PASS")) ? "PASS" : "FAIL";
  console.log("");
  console.log("CPU vs base: the baseline's server CPU per request over this target's (requests per CPU-second, relative);");
  console.log("             steadier than req/s when other processes load the machine. The verdict uses req/s.");
  console.log(`target: each versioned endpoint keeps >= ${fmtPct(TARGET_RATIO)} of the baseline's req/s: ${verdicts.join(", ")} => ${overall}`);
}

function packageVersion(name: string): string {
  try {
    const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const fmtMs = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "n/a").padStart(6);
const fmtPct = (n: number) => `${(n * 100).toFixed(1)}%`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bench:http: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
