/**
 * Helpers for the load generator's tests: start the misbehaving Phoenix server
 * (./phoenix-server.ts) in a process of its own, and run a load in-process through the same
 * option parser the command line uses.
 *
 *     const server = await startPhoenixServer({ dropEvery: 10 }); …; server.stop()
 *     const result = await load(["fanout", "--url", server.url, "--topic", "room:1", "--subscribers", "50"])
 */
import { fork } from "node:child_process";
import { runLoad, type RunHooks } from "../../lib/load/coordinator.ts";
import { parseOptions } from "../../lib/load/options.ts";
import type { LoadResult } from "../../lib/load/types.ts";

export interface PhoenixServer {
  url: string;
  stop(): void;
}

export async function startPhoenixServer(faults: Record<string, unknown> = {}): Promise<PhoenixServer> {
  const child = fork(new URL("./phoenix-server.ts", import.meta.url), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, FAULTS: JSON.stringify(faults) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the test Phoenix server did not start within 30 s")), 30_000);
    child.once("message", (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    child.once("exit", (code) => reject(new Error(`the test Phoenix server exited with ${code}`)));
  });
  return { url: `ws://127.0.0.1:${port}/socket`, stop: () => child.kill("SIGKILL") };
}

/**
 * One run. The shared CI machine is often saturated by other work, so unless a test is about the
 * self-check it lifts the client-saturation and lag bounds: those tests judge deliveries, not validity.
 */
export function load(args: string[], selfCheck = false, hooks: RunHooks = {}): Promise<LoadResult> {
  const bounds = selfCheck ? [] : ["--max-client-cpu", "2", "--max-lag-ms", "100000"];
  return runLoad(
    parseOptions([
      ...args,
      "--workers",
      args.includes("--workers") ? args[args.indexOf("--workers") + 1]! : "1",
      ...bounds,
    ]),
    hooks,
  );
}
