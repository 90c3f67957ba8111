/**
 * What the HTTP benchmark prints: the set-up, one line per run, and the summary of medians with
 * the ratios against the reference and the peer and the verdict against the targets. A run whose
 * load generator saturated its core gets no ratios: it is reported INVALID.
 *
 *     printSample("round 1/5", "v2", sample, 0.9)
 *     const valid = printSummary(samples, options, 0.9)
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { median } from "./load.ts";

/** Each versioned endpoint keeps at least this share of the reference's req/s, */
export const TARGET_RATIO = 0.85;
/** with a p99 at most this multiple of the reference's, */
export const TARGET_P99_RATIO = 1.2;
/** and aims to be at least as fast as the peer. */
export const TARGET_PEER_RATIO = 1.0;

export const TARGET_NAMES = ["reference", "peer", "v2", "v1"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface Options {
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  connections: number;
  logLevel: string;
  profileDir: string | undefined;
  /** Where `perf record` writes, when the run breaks each server's CPU down with perf (`--perf`). */
  perfDir: string | undefined;
  /** Flags for node, the same for every server (`--node-flags`). */
  nodeFlags: string[];
  /** The references prepare their two statements as Hypercast does (`--prepared-references`). */
  preparedReferences: boolean;
  databaseUrl: string;
}

export interface Sample {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  serverMicrosPerRequest: number;
  postgresMicrosPerRequest: number;
  /** CPU time over wall time (1 = one core busy). */
  generatorShare: number;
  serverShare: number;
}

const LABELS: Record<TargetName, string> = {
  reference: "reference: Koa+knex+pg",
  peer: "peer: NestJS+Fastify",
  v2: "Hypercast v2 (default)",
  v1: "Hypercast v1 (Accept v1)",
};

export function printHeader(options: Options): void {
  const cpus = os.cpus();
  console.log("Hypercast HTTP benchmark: GET /users/:id with a bearer token, on PostgreSQL");
  console.log(`date        ${new Date().toISOString()}`);
  console.log(
    `machine     ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}`,
  );
  console.log(
    `load avg    ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} (1/5/15 min, before start)`,
  );
  console.log(
    `node        ${process.version}; autocannon ${version("autocannon")}, koa ${version("koa")}, @nestjs/core ${version("@nestjs/core")}, fastify ${version("fastify")}, knex ${version("knex")}, pg ${version("pg")}`,
  );
  console.log(
    `processes   each server alone in its process, compiled to JavaScript under plain node, all pinned to core 0; autocannon in its own process on core 1`,
  );
  console.log(
    `            Hypercast as in production: LOG_LEVEL=${options.logLevel} (to /dev/null), metrics, ETags, security headers, rate limiter counting`,
  );
  console.log(
    `statements  Hypercast's prepared (named, once per connection); the references' ${options.preparedReferences ? "prepared alike (--prepared-references)" : "unprepared, as knex sends them by default (--prepared-references prepares them)"}`,
  );
  console.log(
    `load        ${options.connections} connections, pipelining 1; warm-up ${options.warmupSeconds} s per target; ${options.rounds} rounds x ${options.seconds} s per target, order rotated each round`,
  );
}

export function printSample(phase: string, name: TargetName, s: Sample, saturated: number): void {
  const flag = s.generatorShare > saturated ? "  GENERATOR SATURATED" : "";
  console.log(
    `${phase.padEnd(11)} ${name.padEnd(9)} ${fmtInt(s.requestsPerSecond).padStart(7)} req/s  p50 ${fmtMs(s.p50)} ms  p99 ${fmtMs(s.p99)} ms  server ${fmtInt(s.serverMicrosPerRequest).padStart(4)} us/req (${fmtPct(s.serverShare)} of a core)  PostgreSQL ${fmtInt(s.postgresMicrosPerRequest).padStart(4)} us/req  generator ${fmtPct(s.generatorShare)} of a core${flag}`,
  );
}

/** Prints the medians, and the ratios and verdict when the run is valid; returns whether it was. */
export function printSummary(samples: Record<TargetName, Sample[]>, options: Options, saturated: number): boolean {
  const med = (name: TargetName, pick: (s: Sample) => number) => median(samples[name].map(pick));
  console.log("");
  console.log(`medians of ${options.rounds} rounds`);
  console.log(
    `${"target".padEnd(25)} ${"req/s".padStart(7)} ${"(min-max)".padStart(15)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"server us/req".padStart(13)} ${"PG us/req".padStart(9)} ${"generator".padStart(9)}`,
  );
  for (const name of TARGET_NAMES) {
    const rps = samples[name].map((s) => s.requestsPerSecond);
    console.log(
      `${LABELS[name].padEnd(25)} ${fmtInt(med(name, (s) => s.requestsPerSecond)).padStart(7)} ${`(${fmtInt(Math.min(...rps))}-${fmtInt(Math.max(...rps))})`.padStart(15)} ${fmtMs(med(name, (s) => s.p50)).padStart(7)} ${fmtMs(med(name, (s) => s.p99)).padStart(7)} ${fmtInt(med(name, (s) => s.serverMicrosPerRequest)).padStart(13)} ${fmtInt(med(name, (s) => s.postgresMicrosPerRequest)).padStart(9)} ${fmtPct(Math.max(...samples[name].map((s) => s.generatorShare))).padStart(9)}`,
    );
  }
  console.log("");
  const saturatedRuns = TARGET_NAMES.flatMap((name) =>
    samples[name].filter((s) => s.generatorShare > saturated).map(() => name),
  );
  if (saturatedRuns.length > 0) {
    console.log(
      `INVALID: the load generator used more than ${fmtPct(saturated)} of its core in ${saturatedRuns.length} run(s) (${[...new Set(saturatedRuns)].join(", ")}):`,
    );
    console.log(
      "         it, not the servers, set the pace, so no ratio is printed. Use fewer connections or a quieter machine.",
    );
    return false;
  }
  const ref = {
    rps: med("reference", (s) => s.requestsPerSecond),
    p99: med("reference", (s) => s.p99),
    cpu: med("reference", (s) => s.serverMicrosPerRequest),
    pg: med("reference", (s) => s.postgresMicrosPerRequest),
  };
  const peerRps = med("peer", (s) => s.requestsPerSecond);
  console.log(`ratios (x the reference, or the peer)   req/s   p99   server CPU/req   PG CPU/req   req/s vs peer`);
  const verdicts: string[] = [];
  for (const name of TARGET_NAMES.filter((n) => n !== "reference")) {
    const rps = med(name, (s) => s.requestsPerSecond);
    const p99 = med(name, (s) => s.p99);
    const line = `${LABELS[name].padEnd(38)} ${fmtX(rps / ref.rps).padStart(6)} ${fmtX(p99 / ref.p99).padStart(5)} ${fmtX(med(name, (s) => s.serverMicrosPerRequest) / ref.cpu).padStart(16)} ${fmtX(med(name, (s) => s.postgresMicrosPerRequest) / ref.pg).padStart(12)} ${name === "peer" ? "" : fmtX(rps / peerRps).padStart(15)}`;
    console.log(line);
    if (name === "peer") continue;
    const checks = [
      [`req/s ${fmtX(rps / ref.rps)} >= ${fmtX(TARGET_RATIO)}`, rps / ref.rps >= TARGET_RATIO],
      [`p99 ${fmtX(p99 / ref.p99)} <= ${fmtX(TARGET_P99_RATIO)}`, p99 / ref.p99 <= TARGET_P99_RATIO],
      [`vs peer ${fmtX(rps / peerRps)} >= ${fmtX(TARGET_PEER_RATIO)}`, rps / peerRps >= TARGET_PEER_RATIO],
    ] as const;
    verdicts.push(`${name}: ${checks.map(([text, ok]) => `${text} ${ok ? "PASS" : "FAIL"}`).join(", ")}`);
  }
  // The machine's speed drifts from round to round (other tenants): within a round the targets run
  // back to back, so a ratio taken there shows how far that drift alone moves the ratios above.
  console.log("");
  console.log("req/s round by round (each ratio within one round): median (min-max)");
  const within = (name: TargetName, other: TargetName) =>
    samples[name].map((s, round) => s.requestsPerSecond / samples[other][round]!.requestsPerSecond);
  for (const name of TARGET_NAMES.filter((n) => n !== "reference")) {
    const againstPeer = name === "peer" ? "" : `   vs the peer ${fmtSpread(within(name, "peer"))}`;
    console.log(`${LABELS[name].padEnd(38)} vs the reference ${fmtSpread(within(name, "reference"))}${againstPeer}`);
  }
  console.log("");
  console.log(
    "targets (README): each versioned endpoint >= 0.85x the reference's req/s with p99 <= 1.2x, and ahead of the peer",
  );
  for (const verdict of verdicts) console.log(`  ${verdict}`);
  console.log(
    "  a ratio within a round's spread is not resolved here: `npm run bench:http:compare -- --against peer` (or reference) measures CPU per request in the same seconds",
  );
  return true;
}

function version(name: string): string {
  try {
    const manifest = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const fmtMs = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "n/a").padStart(6);
const fmtPct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : "n/a");
const fmtX = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : "n/a");
const fmtSpread = (ratios: number[]) =>
  `${fmtX(median(ratios))} (${fmtX(Math.min(...ratios))}-${fmtX(Math.max(...ratios))})`;
