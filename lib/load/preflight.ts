/**
 * Before a run: can this machine open the sockets asked for? Checks the open-file limit and the
 * ephemeral port range against the sockets per worker, and plans the 127.0.0.x source addresses of
 * a loopback run so that no address runs out of ports. Returns problems with what to change.
 *
 * The limit and the range are inputs (for tests); by default they are read from this process:
 * /proc/self/limits (or `ulimit -n` where there is no /proc) and /proc/sys/net/ipv4/ip_local_port_range
 * (or Linux's default range, 32768–60999, with a warning).
 *
 * Source addresses are planned only on Linux (where all of 127.0.0.0/8 answers on loopback), only
 * when every target host is an IPv4 127.x address (a socket to [::1] cannot be bound to 127.0.0.x),
 * and only when the run has more sockets than one address's share of the port range.
 *
 *     const check = preflight({ socketsPerWorker: [5000, 5000], hosts: ["127.0.0.1"] })
 *     check.problems // [] — or ["worker 1 needs about 20,100 open files but the limit is 20,000: …"]
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Preflight {
  problems: string[];
  warnings: string[];
  /** Source addresses per worker (empty when they are not planned). */
  addresses: string[][];
  openFiles: number;
  portRange: number;
}

export interface PreflightInput {
  socketsPerWorker: number[];
  /** The target hosts as URL hostnames (an IPv6 one in brackets: "[::1]"). */
  hosts: string[];
  /** Default: process.platform. */
  platform?: NodeJS.Platform;
  /** The open-file limit (Infinity for unlimited); default: read from this process. */
  openFiles?: number;
  /** The ephemeral port range, first and last port; default: read from this machine. */
  portRange?: readonly [number, number];
}

const DEFAULT_RANGE: readonly [number, number] = [32_768, 60_999];
const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** This process's open-file limit (Infinity for unlimited, NaN when it cannot be told). */
export function readOpenFileLimit(): number {
  const limits = read("/proc/self/limits");
  let value = limits === undefined ? undefined : /Max open files\s+(\d+|unlimited)/.exec(limits)?.[1];
  if (value === undefined) {
    try {
      value = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8", timeout: 2000 }).trim();
    } catch {
      return Number.NaN;
    }
  }
  return value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value);
}

/** This machine's ephemeral port range, or undefined when it cannot be read. */
export function readPortRange(): [number, number] | undefined {
  const range = read("/proc/sys/net/ipv4/ip_local_port_range")?.trim().split(/\s+/).map(Number);
  return range?.length === 2 && range.every(Number.isFinite) ? [range[0]!, range[1]!] : undefined;
}

/** Whether a run spreads its sockets over 127.0.0.x source addresses. */
export function plansSourceAddresses(hosts: string[], platform: NodeJS.Platform = process.platform): boolean {
  return platform === "linux" && hosts.length > 0 && hosts.every((h) => LOOPBACK_V4.test(h));
}

export function preflight(input: PreflightInput): Preflight {
  const warnings: string[] = [];
  const problems: string[] = [];
  const openFiles = input.openFiles ?? readOpenFileLimit();
  let range = input.portRange ?? readPortRange();
  if (range === undefined) {
    warnings.push(
      `cannot read the ephemeral port range: assumed ${DEFAULT_RANGE.join("–")} (see sysctl net.ipv4.ip_local_port_range)`,
    );
    range = DEFAULT_RANGE;
  }
  const portRange = range[1] - range[0] + 1;
  if (Number.isNaN(openFiles)) warnings.push("cannot read the open-file limit (ulimit -n): not checked");
  const total = input.socketsPerWorker.reduce((a, b) => a + b, 0);
  // A worker needs one descriptor per socket, plus some for Node itself.
  input.socketsPerWorker.forEach((n, i) => {
    if (n + 64 > openFiles) {
      problems.push(
        `worker ${i + 1} needs about ${(n + 64).toLocaleString("en-US")} open files but the limit is ${openFiles.toLocaleString("en-US")}: ` +
          `raise it (ulimit -n ${Math.max(65_536, n * 2)}) or add workers (--workers ${Math.ceil((total * 1.1) / Math.max(1, openFiles - 64))})`,
      );
    }
  });
  // Ports are allocated per source address; keep each address at 80% of the range.
  const perAddress = Math.max(1, Math.floor(portRange * 0.8));
  // Spread only when one address would run out of ports: a socket bound to an explicit source
  // address gets its port at bind() time, which the kernel finds by searching its bound ports
  // (costlier the more are taken); an unbound socket gets its port at connect() time, cheaply.
  const needed = plansSourceAddresses(input.hosts, input.platform);
  const spread = needed && total > perAddress;
  const addresses: string[][] = [];
  let next = 2;
  for (const n of input.socketsPerWorker) {
    if (!spread) {
      addresses.push([]);
      continue;
    }
    const count = Math.max(1, Math.ceil(n / perAddress));
    addresses.push(Array.from({ length: count }, () => `127.0.0.${next++}`));
  }
  const widen = `widen the ephemeral port range (sysctl -w net.ipv4.ip_local_port_range="1024 65535")`;
  if (spread && next > 255)
    problems.push(
      `${total.toLocaleString("en-US")} sockets need ${next - 2} source addresses in 127.0.0.x (at most 253) with a ${portRange.toLocaleString("en-US")}-port range: ${widen}`,
    );
  if (!spread && total > perAddress) {
    warnings.push(
      `${total.toLocaleString("en-US")} sockets from one address to one server port exceed 80% of the ${portRange.toLocaleString("en-US")}-port ephemeral range: ` +
        `${widen} or spread clients over machines`,
    );
  }
  return { problems, warnings, addresses, openFiles, portRange };
}
