/**
 * Before a run: can this machine open the sockets asked for? Reads the open-file limit
 * (/proc/self/limits) and the ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), and
 * plans the 127.0.0.x source addresses of a loopback run so that no address runs out of ports.
 * Returns problems with what to change; off Linux the checks are skipped with a warning.
 *
 *     const check = preflight({ socketsPerWorker: [5000, 5000], loopback: true })
 *     check.problems // [] — or ["worker 1 needs 20,100 open files but the limit is 20,000: …"]
 */
import { readFileSync } from "node:fs";

export interface Preflight {
  problems: string[];
  warnings: string[];
  /** Source addresses per worker (empty for a non-loopback target). */
  addresses: string[][];
  openFiles: number;
  portRange: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function preflight(options: { socketsPerWorker: number[]; loopback: boolean }): Preflight {
  const warnings: string[] = [];
  const problems: string[] = [];
  const limits = read("/proc/self/limits");
  const openFiles = Number(/Max open files\s+(\d+|unlimited)/.exec(limits ?? "")?.[1] ?? Number.NaN);
  const range = read("/proc/sys/net/ipv4/ip_local_port_range")?.trim().split(/\s+/).map(Number);
  const portRange = range === undefined ? 28_232 : range[1]! - range[0]! + 1;
  if (limits === undefined) warnings.push("cannot read /proc/self/limits: open-file limit not checked");
  // A worker needs one descriptor per socket, plus some for Node itself.
  options.socketsPerWorker.forEach((n, i) => {
    if (Number.isFinite(openFiles) && n + 64 > openFiles) {
      problems.push(
        `worker ${i + 1} needs about ${(n + 64).toLocaleString("en-US")} open files but the limit is ${openFiles.toLocaleString("en-US")}: ` +
          `raise it (ulimit -n ${Math.max(65_536, n * 2)}) or add workers (--workers ${Math.ceil((options.socketsPerWorker.reduce((a, b) => a + b, 0) * 1.1) / (openFiles - 64))})`,
      );
    }
  });
  // Ports are allocated per source address; keep each address at 80% of the range.
  const perAddress = Math.floor(portRange * 0.8);
  const addresses: string[][] = [];
  let next = 2;
  for (const n of options.socketsPerWorker) {
    if (!options.loopback) {
      addresses.push([]);
      continue;
    }
    const count = Math.max(1, Math.ceil(n / perAddress));
    addresses.push(Array.from({ length: count }, () => `127.0.0.${next++}`));
  }
  const total = options.socketsPerWorker.reduce((a, b) => a + b, 0);
  if (options.loopback && next > 255)
    problems.push(
      `${total.toLocaleString("en-US")} sockets need ${next - 2} source addresses in 127.0.0.x (at most 253): widen the port range (sysctl -w net.ipv4.ip_local_port_range="1024 65535")`,
    );
  if (!options.loopback && total > perAddress) {
    warnings.push(
      `${total.toLocaleString("en-US")} sockets from one address to one server port exceed 80% of the ${portRange.toLocaleString("en-US")}-port ephemeral range: ` +
        `widen it (sysctl -w net.ipv4.ip_local_port_range="1024 65535") or spread clients over machines`,
    );
  }
  return { problems, warnings, addresses, openFiles, portRange };
}
