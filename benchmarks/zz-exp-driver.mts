// Experiment only: both variants pinned to core 0 at once; one hypercast-load connect on core 1 alternates sockets.
import { setTimeout as sleep } from "node:timers/promises";
import { createProcessGroup } from "./cluster/processes.ts";
import { startLoad } from "./joins/background-load.ts";
import { median, pinning, procCpuTimes, startPinned } from "./ws/rounds.ts";
const pins = pinning();
const group = createProcessGroup();
const HELD = 2000, SOCKETS = 8000, RAMP = 1000, ROUNDS = Number(process.argv[2] ?? 6);
const variants = (process.argv[3] ?? "raw,hooks").split(",");
const ratios: number[] = [];
const cost = (a: any, b: any, idle: number, ms: number) => ({ user: (b.user - a.user) * 1e6 / SOCKETS, kernel: (b.system - a.system) * 1e6 / SOCKETS, idle: idle * ms / 1000 * 1e6 / SOCKETS });
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? variants : [...variants].reverse();
  const servers = [];
  for (const v of order) servers.push(await startPinned(pins.server, "/tmp/exp/server.mjs", { VARIANT: v }));
  try {
    const common = [...servers.flatMap((s) => ["--url", `ws://127.0.0.1:${s.port}/socket`]), "--topic", "room:1", "--param", "token=unused", "--ramp", String(2 * RAMP), "--max-lag-ms", "250", "--join-payload", '{"presence":false}'];
    const connect = (n: number, sec: number) => startLoad(pins, group, ["connect", ...common, "--subscribers", String(n), "--duration", String(sec)]);
    const held = connect(2 * HELD, SOCKETS / RAMP + 32);
    await held.joined(2 * HELD);
    await sleep(3000);
    const i0 = servers.map((s) => procCpuTimes(s.pid)); const t0 = performance.now();
    await sleep(4000);
    const i1 = servers.map((s) => procCpuTimes(s.pid)); const idleMs = performance.now() - t0;
    const idle = servers.map((_, i) => (i1[i]!.user + i1[i]!.system - i0[i]!.user - i0[i]!.system) / (idleMs / 1000));
    const c0 = servers.map((s) => procCpuTimes(s.pid)); const f = performance.now();
    const load = connect(2 * SOCKETS, 2);
    await load.joined(2 * SOCKETS);
    await sleep(500);
    const c1 = servers.map((s) => procCpuTimes(s.pid)); const ms = performance.now() - f;
    const { result } = await load.finished;
    const per = servers.map((_, i) => { const c = cost(c0[i], c1[i], idle[i]!, ms); return { ...c, total: c.user + c.kernel - c.idle }; });
    const byName = Object.fromEntries(order.map((v, i) => [v, per[i]!]));
    const ratio = byName[variants[1]!]!.total / byName[variants[0]!]!.total;
    if (result.valid) ratios.push(ratio);
    console.log(`round ${r + 1}: ` + variants.map((v) => `${v} ${byName[v]!.total.toFixed(1)} (u ${byName[v]!.user.toFixed(1)} k ${byName[v]!.kernel.toFixed(1)} idle ${byName[v]!.idle.toFixed(1)})`).join("  ") + `  ratio ${ratio.toFixed(3)} ${result.valid ? "valid" : "INVALID " + result.invalid_reasons.join(";")}`);
    await held.finished.catch(() => undefined).then(() => undefined);
  } finally {
    group.killAll();
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
}
console.log(`median ratio ${median(ratios).toFixed(3)} over ${ratios.length}; lower in ${ratios.filter((x) => x < 1).length}`);
process.exit(0);
