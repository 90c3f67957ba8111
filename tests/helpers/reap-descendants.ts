/**
 * Loaded into every ava worker (package.json `nodeArguments`): when the worker ends — its tests
 * done, or killed by ava's timeout (SIGTERM) — every process it started, and theirs, is killed.
 * A server or load generator left behind by a failed test would otherwise keep the worker's
 * output pipes open, and ava (and CI) would wait for it forever.
 *
 * Linux only (it reads /proc); elsewhere it does nothing.
 */
import { readdirSync, readFileSync } from "node:fs";

/** Every live descendant of `root`, children before grandchildren. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const siblings = children.get(ppid);
    if (siblings === undefined) children.set(ppid, [Number(name)]);
    else siblings.push(Number(name));
  }
  const found: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) (found.push(child), queue.push(child));
  }
  return found;
}

function reap(): void {
  for (const pid of descendants(process.pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

process.on("exit", reap);
process.once("SIGTERM", () => {
  reap();
  process.exit(143);
});
