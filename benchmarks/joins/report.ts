/**
 * What bench:joins prints once its rounds are done: the set-up, the table of medians over rounds
 * (Hypercast beside raw uWS, with ratios unless a load run was not valid), and the verdict on
 * Hypercast's targets (README, Benchmarks), or INVALID on stderr with exit code 3.
 *
 *     printResults(rounds, { options, pinsNote: pins.note, databaseName: database.name })
 *     exitCode = printVerdict(rounds, options)
 */
import { describeNodeFlags } from "../lib/options.ts";
import { machineLine, median, printTable, type Row } from "../ws/rounds.ts";
import { MAX_LAG_MS, type Round } from "./measure.ts";
import type { JoinsOptions } from "./options.ts";

/** The targets of the performance work (README, Benchmarks). */
const TARGET_CPU_PER_JOIN_US = 100;
const TARGET_KIB_PER_SOCKET = 3;
const TARGET_IDLE_RSS_MIB = 100;

/** The two columns, in the order of `rounds` (Hypercast's first). */
export const COLUMNS = ["Hypercast", "raw uWS"];

export interface Setup {
  options: JoinsOptions;
  /** How the processes were pinned (`pinning().note`). */
  pinsNote: string;
  databaseName: string;
}

/** Whether every load run of every round was valid. */
export function allValid(rounds: Round[][]): boolean {
  return rounds.flat().every((r) => r.valid);
}

/** Per column, the median over its rounds of what `pick` reads. */
const medians = (rounds: Round[][], pick: (r: Round) => number) => rounds.map((list) => median(list.map(pick)));

/** The set-up and the table; the ratios are withheld when a load run was not valid. */
export function printResults(rounds: Round[][], { options, pinsNote, databaseName }: Setup): void {
  const { first, total } = options;
  const m = (pick: (r: Round) => number) => medians(rounds, pick);
  const rows: Row[] = [
    {
      label: `RSS MiB ${options.settleSeconds + 2} s after start`,
      values: m((r) => r.bootRssMiB),
      digits: 1,
      ratio: true,
    },
    {
      label: `idle RSS MiB (${options.idleRssAfterSeconds} s later)`,
      values: m((r) => r.idleRssMiB),
      digits: 1,
      ratio: true,
    },
    { label: "idle CPU % of a core", values: m((r) => r.idleCpuPercent), digits: 2, ratio: false },
    {
      label: `server CPU µs per join, 0 → ${first.toLocaleString("en-US")}`,
      values: m((r) => r.cpuPerJoinUs[0]),
      digits: 1,
      ratio: true,
    },
    {
      label: `server CPU µs per join, → ${total.toLocaleString("en-US")}`,
      values: m((r) => r.cpuPerJoinUs[1]),
      digits: 1,
      ratio: true,
    },
    {
      label: "… of which in user space (JavaScript, V8, uWS)",
      values: m((r) => (Number.isFinite(r.cpuPerJoinUs[1]) ? r.phase2SplitUs.user : Number.NaN)),
      digits: 1,
      ratio: true,
    },
    {
      label: "… of which in the kernel (TCP, epoll)",
      values: m((r) => (Number.isFinite(r.cpuPerJoinUs[1]) ? r.phase2SplitUs.system : Number.NaN)),
      digits: 1,
      ratio: true,
    },
    { label: "join p99 ms, phase 1", values: m((r) => r.joinP99Ms[0]), digits: 1, ratio: true },
    { label: "join p99 ms, phase 2", values: m((r) => r.joinP99Ms[1]), digits: 1, ratio: true },
    {
      label: `RSS MiB at ${first.toLocaleString("en-US")} sockets`,
      values: m((r) => r.rssMiB[0]),
      digits: 1,
      ratio: true,
    },
    {
      label: `RSS MiB at ${total.toLocaleString("en-US")} sockets`,
      values: m((r) => r.rssMiB[1]),
      digits: 1,
      ratio: true,
    },
    { label: "RSS KiB per joined socket (slope)", values: m((r) => r.kibPerSocket), digits: 2, ratio: true },
    {
      label: `V8 young generation MiB at ${first.toLocaleString("en-US")} sockets`,
      values: m((r) => r.youngMiB[0]),
      digits: 1,
      ratio: false,
    },
    {
      label: `V8 young generation MiB at ${total.toLocaleString("en-US")} sockets`,
      values: m((r) => r.youngMiB[1]),
      digits: 1,
      ratio: false,
    },
    {
      label: "RSS KiB per joined socket, the young generation's growth aside",
      values: m((r) => ((r.rssMiB[1] - r.rssMiB[0] - (r.youngMiB[1] - r.youngMiB[0])) * 1024) / (total - first)),
      digits: 2,
      ratio: false,
    },
    { label: "client busiest core %", values: m((r) => r.busiestCore * 100), digits: 0, ratio: false },
  ];
  console.log(`\njoins benchmark — ${machineLine()}`);
  console.log(
    `${pinsNote}; ${describeNodeFlags(options.nodeFlags)}; Hypercast compiled on PostgreSQL (database ${databaseName}, dropped afterwards); ${first} then ${total} sockets into one topic at ${options.ramp}/s, ${options.presence ? "presence-tracked" : "as audience (no presence)"}; CPU per join net of each server's idle CPU; client lag bound ${MAX_LAG_MS} ms; ${options.rounds} round(s), medians\n`,
  );
  printTable(COLUMNS, rows, allValid(rounds));
}

/**
 * Hypercast's medians against the targets, on stdout; when a load run was not valid, INVALID and
 * its reasons on stderr instead. Returns the exit code: 3 for an invalid run, else 0.
 */
export function printVerdict(rounds: Round[][], options: JoinsOptions): 0 | 3 {
  if (!allValid(rounds)) {
    console.error(
      `INVALID: no ratio and no verdict: ${[...new Set(rounds.flat().flatMap((r) => r.reasons))].join("; ")}`,
    );
    return 3;
  }
  const hypercast = (pick: (r: Round) => number) => medians(rounds, pick)[0]!;
  const [cpu1, cpu2, idle, slope] = [
    hypercast((r) => r.cpuPerJoinUs[0]),
    hypercast((r) => r.cpuPerJoinUs[1]),
    hypercast((r) => r.idleRssMiB),
    hypercast((r) => r.kibPerSocket),
  ];
  const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
  console.log(`\ntargets (README): Hypercast's`);
  console.log(
    Number.isFinite(cpu1) && Number.isFinite(cpu2)
      ? `  server CPU per join ≤ ${TARGET_CPU_PER_JOIN_US} µs: ${cpu1.toFixed(1)} / ${cpu2.toFixed(1)} µs ${verdict(Math.max(cpu1, cpu2) <= TARGET_CPU_PER_JOIN_US)}`
      : `  server CPU per join ≤ ${TARGET_CPU_PER_JOIN_US} µs: not measurable (a phase used under 0.2 s of CPU: too few joins)`,
  );
  console.log(
    `  RSS per joined socket ≤ ${TARGET_KIB_PER_SOCKET} KiB: ${slope.toFixed(2)} KiB ${verdict(slope <= TARGET_KIB_PER_SOCKET)}`,
  );
  console.log(
    `  idle RSS ≤ ${TARGET_IDLE_RSS_MIB} MiB: ${idle.toFixed(1)} MiB after ${options.idleRssAfterSeconds} s idle ${verdict(idle <= TARGET_IDLE_RSS_MIB)}`,
  );
  return 0;
}
