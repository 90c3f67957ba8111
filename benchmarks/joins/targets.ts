/**
 * The two servers bench:joins compares, each started afresh as a `Target` and pinned alike:
 * Hypercast as production runs it (`node <build>/lib/bin/cli.js serve` on the benchmark's database,
 * seeded over its API with one user and one room, its young generation read from `/metrics`), and
 * the bare uWebSockets.js server of bench:ws (../ws/raw-server.ts). Both run compiled to plain
 * JavaScript (../lib/compiled.ts), so that neither runs under a runtime TypeScript loader: tsx's
 * loader alone adds tens of MiB to a process's RSS.
 *
 *     await compileTargets(build)
 *     const hypercast = await startHypercast(servers, databaseUrl)
 *     const reference = await startReference(servers)
 */
import { randomBytes } from "node:crypto";
import { startNode, stopNode, type Node, type ProcessGroup } from "../cluster/processes.ts";
import { seedOverApi } from "../cluster/seed.ts";
import { buildHypercast, compileEntry } from "../lib/compiled.ts";
import { startPinned, type PinnedServer, type Pins } from "../ws/rounds.ts";

export interface Target {
  name: string;
  pid: number;
  url: string;
  topic: string;
  token: string;
  /**
   * The V8 young generation's committed bytes (Hypercast's `/metrics`); undefined for a server
   * that does not tell (raw uWS).
   */
  youngGenerationBytes?: () => Promise<number>;
  stop(): Promise<void>;
}

/** How both servers are started. */
export interface Servers {
  group: ProcessGroup;
  pins: Pins;
  /** The directory `compileTargets` built into. */
  build: string;
  nodeFlags: readonly string[];
  /** Where each Hypercast process writes a V8 CPU profile, if anywhere. */
  profileDir: string | undefined;
}

export const REFERENCE = "benchmarks/ws/raw-server.ts";

/** Hypercast's build and the reference, compiled into `build` (relative to the repository). */
export async function compileTargets(build: string): Promise<void> {
  buildHypercast(build);
  await compileEntry(build, REFERENCE);
}

/** How bench:joins (and bench:joins:compare) start Hypercast, besides its database and secret. */
export const HYPERCAST_ENV = {
  NODE_ENV: "production",
  LOG_LEVEL: "warn",
  PASSWORD_HASH_COST: "10",
  // One user holds every socket of a load test.
  SOCKETS_PER_USER: "1000000",
  RATE_LIMITS: "off",
};

export async function startHypercast(servers: Servers, databaseUrl: string): Promise<Target> {
  const { profileDir } = servers;
  const node: Node = await startNode(servers.group, {
    name: "hypercast",
    env: {
      ...HYPERCAST_ENV,
      DATABASE_URL: databaseUrl,
      SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    },
    pin: servers.pins.server,
    build: servers.build,
    nodeArgs: [
      ...servers.nodeFlags,
      ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    ],
  });
  const seed = await seedOverApi(node.httpUrl, ["joins"]);
  return {
    name: "Hypercast",
    pid: node.pid,
    url: `${node.socketUrl}/socket`,
    topic: seed.topics["joins"]!,
    token: seed.socketToken,
    youngGenerationBytes: () => youngGenerationBytes(node.httpUrl),
    stop: () => stopNode(node, 10_000),
  };
}

/** The `new` space of prom-client's default `nodejs_heap_space_size_total_bytes`, from `/metrics`. */
async function youngGenerationBytes(httpUrl: string): Promise<number> {
  const response = await fetch(`${httpUrl}/metrics`);
  const text = await response.text();
  const line = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
  if (!response.ok || line === null)
    throw new Error(`${httpUrl}/metrics: no young generation size (${response.status})`);
  return Number(line[1]);
}

export async function startReference(servers: Servers): Promise<Target> {
  const compiled = `${servers.build}/${REFERENCE.replace(/\.ts$/, ".mjs")}`;
  const server: PinnedServer = await startPinned(servers.pins.server, compiled, {}, servers.nodeFlags);
  return {
    name: "raw uWS",
    pid: server.pid,
    url: `ws://127.0.0.1:${server.port}/socket`,
    topic: server.topic,
    token: server.token,
    stop: () => server.stop(),
  };
}
