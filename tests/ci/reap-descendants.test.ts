/**
 * The safety net every ava worker carries (tests/helpers/reap-descendants.ts): when a process
 * that loaded it ends, normally or by ava's SIGTERM, the processes it started and theirs die too.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { descendants } from "../helpers/reap-descendants.ts";

/** Running (a zombie waiting for its parent to reap it counts as gone). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
};

/** A node process with the safety net that starts a shell, which starts two sleeps; reports their pids. */
async function startTree(exitHow: "exit" | "SIGTERM"): Promise<{ child: ReturnType<typeof spawn>; pids: number[] }> {
  const script = `
    const { spawn } = require("node:child_process");
    const sh = spawn("sh", ["-c", "sleep 300 & sleep 300 & wait"], { stdio: "ignore" });
    setTimeout(async () => {
      const { descendants } = await import(${JSON.stringify(new URL("../helpers/reap-descendants.ts", import.meta.url).href)});
      console.log(JSON.stringify(descendants(process.pid)));
      ${exitHow === "exit" ? "setTimeout(() => process.exit(0), 50);" : "setInterval(() => {}, 1000);"}
    }, 300);`;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--import", new URL("../helpers/reap-descendants.ts", import.meta.url).pathname, "-e", script],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { child, pids: JSON.parse(line.toString()) as number[] };
}

for (const how of ["exit", "SIGTERM"] as const) {
  test(`a process that ends by ${how} takes its children and grandchildren with it`, async (t) => {
    const { child, pids } = await startTree(how);
    t.is(pids.length, 3, "the shell and its two sleeps");
    t.true(pids.every(alive));
    if (how === "SIGTERM") child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    t.is(code, how === "exit" ? 0 : 143);
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.deepEqual(pids.filter(alive), [], "nothing it started outlives it");
  });
}

test("descendants lists children before grandchildren, and nothing of other trees", (t) => {
  const sh = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
  return new Promise<void>((resolve) =>
    setTimeout(() => {
      const mine = descendants(process.pid);
      const [sleep] = descendants(sh.pid!);
      t.not(sleep, undefined, "the shell's sleep");
      t.true(mine.indexOf(sh.pid!) >= 0 && mine.indexOf(sh.pid!) < mine.indexOf(sleep!), "the sleep follows its shell");
      t.false(mine.includes(process.ppid));
      sh.kill("SIGKILL");
      resolve();
    }, 300),
  );
});
