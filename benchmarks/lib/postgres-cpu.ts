/**
 * PostgreSQL's CPU time spent for one server under test: the backends whose `application_name`
 * is that server's (each server connects with its own), read from the kernel like every other
 * process in the benchmark. Needs the database on this machine (the benchmark insists on a
 * loopback URL) and permission to read its backends' /proc entries.
 *
 *     const probe = await postgresCpu(databaseUrl)
 *     const before = await probe.sample("bench-hypercast")
 *     const micros = probe.since(before, await probe.sample("bench-hypercast"))
 */
import pg from "pg";
import { procCpuMicros } from "./processes.ts";

/** CPU microseconds per backend pid. */
export type CpuSample = ReadonlyMap<number, number>;

export interface PostgresCpu {
  sample(applicationName: string): Promise<CpuSample>;
  /** CPU used between two samples; a backend that appeared in between counts from zero. */
  since(before: CpuSample, after: CpuSample): number;
  close(): Promise<void>;
}

export async function postgresCpu(databaseUrl: string): Promise<PostgresCpu> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "bench-probe" });
  await client.connect();
  return {
    async sample(applicationName) {
      const { rows } = await client.query<{ pid: number }>(
        "select pid from pg_stat_activity where application_name = $1",
        [applicationName],
      );
      return new Map(
        rows.map((row) => [row.pid, procCpuMicros(row.pid)] as const).filter(([, cpu]) => Number.isFinite(cpu)),
      );
    },
    since(before, after) {
      let total = 0;
      for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
      return total;
    },
    close: () => client.end(),
  };
}

/** `url` with `application_name` set, so the server's backends can be told apart. */
export function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("application_name", name);
  return parsed.toString();
}
