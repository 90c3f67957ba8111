/**
 * A `hypercast-load` run in the background, for bench:joins' phases: phase 1's run holds its sockets
 * while phase 2's joins, so neither is awaited whole. `joined(n)` follows the run's progress lines
 * (`joined 5,000` on its stdout); `finished` is its JSON result, as `runLoadTool` reads it back. The
 * child is added to the benchmark's process group, which kills it on any exit path.
 *
 *     const phase1 = startLoad(pins, group, ["connect", "--url", url, …, "--subscribers", "5000"])
 *     await phase1.joined(5000)
 *     const { result } = await phase1.finished
 */
import type { LoadResult } from "../../lib/load/types.ts";
import type { ProcessGroup } from "../cluster/processes.ts";
import { runLoadTool, type Pins } from "../ws/rounds.ts";

export interface BackgroundLoad {
  finished: Promise<{ result: LoadResult; code: number | null }>;
  /** Whether the run has ended (its sockets are gone). */
  ended(): boolean;
  /** Resolves once n sockets have joined; rejects if the run ends first. */
  joined(n: number): Promise<void>;
}

export function startLoad(pins: Pins, group: ProcessGroup, args: string[]): BackgroundLoad {
  let reached = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const finished = runLoadTool(pins, args, {
    onSpawn: (child) => group.add(child),
    onLine(line) {
      const match = /joined ([\d,]+)/.exec(line);
      if (match === null) return;
      reached = Math.max(reached, Number(match[1]!.replaceAll(",", "")));
      for (const w of waiters.filter((w) => reached >= w.n)) w.resolve();
    },
  });
  let ended = false;
  void finished.finally(() => (ended = true)).catch(() => undefined);
  return {
    finished,
    ended: () => ended,
    joined(n: number): Promise<void> {
      if (reached >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ n, resolve });
        void finished.then(
          () => reject(new Error(`hypercast-load ended with ${reached} of ${n} sockets joined`)),
          reject,
        );
      });
    },
  };
}
