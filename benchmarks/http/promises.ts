/**
 * Promises created per request: a load-independent measure of the work Hypercast's request path
 * does around its two queries (each promise is an allocation, usually an async frame, and a
 * microtask; their garbage is collected on the request's CPU). Hypercast runs as in the HTTP
 * benchmark (production config, request log at info, metrics, ETags, security headers, rate
 * limiter counting) in a child process that counts promises with an `async_hooks` PROMISE init
 * hook; the same client then drives a bare `node:http` server the same way, and its count (the
 * client's sockets cost any server) is subtracted. Also printed: the server process's CPU per
 * request over the same requests, inflated by the hook and by whatever else runs on the machine,
 * so compare it only between runs of this script on an otherwise quiet machine.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx benchmarks/http/promises.ts
 *     npx tsx benchmarks/http/promises.ts --requests 5000 --connections 10
 *
 * Flags: --requests per measured pass (2000), --warmup requests first (500), --connections
 * requests in flight at once (10), --rounds measured passes per version (3; the median is printed).
 * Every answer must be 200, or the run fails (exit 1).
 */
import { Agent, request } from "node:http";
import type { HypercastInfo } from "../lib/hypercast-server.ts";
import { commandLine, positiveInt } from "../lib/options.ts";
import { startProcess, type BenchProcess } from "../lib/processes.ts";
import type { CountReply } from "./counted-server.ts";

interface Pass {
  promises: number;
  cpuMicros: number;
}

const { values, usage, check } = commandLine(
  "promises",
  "DATABASE_URL=postgres://… npx tsx benchmarks/http/promises.ts [--requests N] [--warmup N] [--connections N] [--rounds N]",
  {
    requests: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string" },
    rounds: { type: "string" },
  },
);
const requests = check(() => positiveInt("requests", values.requests, 2000));
const warmup = check(() => positiveInt("warmup", values.warmup, 500));
const connections = check(() => positiveInt("connections", values.connections, 10));
const rounds = check(() => positiveInt("rounds", values.rounds, 3));
const databaseUrl =
  process.env["DATABASE_URL"] ??
  usage("set DATABASE_URL to a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test)");

const entry = new URL("./counted-server.ts", import.meta.url);
const start = (bare: boolean) =>
  startProcess<HypercastInfo>(entry, {
    core: undefined,
    args: [JSON.stringify({ databaseUrl, logLevel: "info", bare })],
  });

function count(server: BenchProcess<HypercastInfo>): Promise<CountReply> {
  return new Promise((resolve) => {
    const listener = (message: { type?: string }) => {
      if (message.type !== "count") return;
      server.child.off("message", listener);
      resolve(message as CountReply);
    };
    server.child.on("message", listener);
    server.child.send({ type: "count" });
  });
}

/** `n` requests, `connections` at a time over keep-alive sockets; every answer must be 200. */
async function drive(server: BenchProcess<HypercastInfo>, n: number, accept: string | undefined): Promise<void> {
  const { url, token, userId } = server.info;
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (accept !== undefined) headers["accept"] = accept;
  let left = n;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(`${url}/users/${userId}`, { agent, headers }, (res) => {
        res.resume();
        res.once("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`GET /users/${userId}: ${res.statusCode}`)),
        );
      });
      req.once("error", reject);
      req.end();
    });
  const loop = async () => {
    while (left > 0) {
      left--;
      await one();
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
}

async function measure(server: BenchProcess<HypercastInfo>, accept: string | undefined): Promise<Pass> {
  await drive(server, warmup, accept);
  const passes: Pass[] = [];
  for (let round = 0; round < rounds; round++) {
    const before = await count(server);
    await drive(server, requests, accept);
    const after = await count(server);
    passes.push({
      promises: (after.promises - before.promises) / requests,
      cpuMicros: (after.cpuMicros - before.cpuMicros) / requests,
    });
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  return { promises: median(passes.map((p) => p.promises)), cpuMicros: median(passes.map((p) => p.cpuMicros)) };
}

async function main(): Promise<void> {
  const bare = await start(true);
  let floor: Pass;
  try {
    floor = await measure(bare, undefined);
  } finally {
    await bare.stop();
  }
  const hypercast = await start(false);
  try {
    console.log(`${requests} requests x ${rounds} rounds, ${connections} in flight; per request (median round):`);
    console.log(`  bare node:http       promises ${floor.promises.toFixed(1)}   cpu ${floor.cpuMicros.toFixed(0)} µs`);
    for (const [name, accept] of [
      ["v2 GET /users/:id", undefined],
      ["v1 GET /users/:id", "application/vnd.app.v1+json"],
    ] as const) {
      const pass = await measure(hypercast, accept);
      console.log(
        `  ${name.padEnd(20)} promises ${(pass.promises - floor.promises).toFixed(1)}   cpu ${pass.cpuMicros.toFixed(0)} µs (hook on)`,
      );
    }
  } finally {
    await hypercast.stop();
  }
}

await main();
