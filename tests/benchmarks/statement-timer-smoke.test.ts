/**
 * A CI-sized run of benchmarks/http/statement-timer.ts (one short round), so the script keeps
 * working: each of its three variants runs knex + pg in a process of its own and the medians come
 * out. No timing or GC figure is judged here; what the script showed is in the README.
 */
import test from "ava";
import { runCommand } from "../helpers/processes.ts";

const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

test("statement-timer runs its three variants on PostgreSQL (DATABASE_URL, else the local test database) and prints their medians", async (t) => {
  const { code, stdout, stderr } = await runCommand(
    "npx",
    ["tsx", "benchmarks/http/statement-timer.ts", "--seconds", "0.5", "--rounds", "1"],
    { env: { DATABASE_URL }, timeoutMs: 120_000 },
  );
  const output = `${stdout}\n${stderr}`;
  t.is(code, 0, output);
  const summary = stdout.slice(stdout.indexOf("medians of 1 rounds"));
  for (const variant of ["plain", "query_timeout", "query_timeout, no pretenuring"]) {
    t.regex(
      summary,
      new RegExp(`^${variant} +[\\d,]+ req/s {2}scavenges +\\d+, mean pause [\\d.]+ ms {2}mark-compacts \\d+$`, "m"),
      output,
    );
  }
});
