/**
 * Under `CI=true` a missing service fails the run instead of turning tests into skips (README
 * "Tests and CI"): `clusterUnavailable()` (./harness.ts) and `browserMissing()`
 * (../helpers/browser.ts) are called in child processes whose environment lacks the service — a
 * PATH without redis-server, a DATABASE_URL nothing answers, a CHROMIUM_PATH naming no file — once
 * with CI=true (they must throw) and once without (they must return the reason to skip).
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { freePort, within } from "../helpers/processes.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs `script` (an ES module body) under tsx with exactly `env`; its exit code and output. */
function run(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    env: { HOME: process.env["HOME"] ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return within(
    60_000,
    "the child process",
    new Promise((resolve) => child.once("close", (code) => resolve({ code, output }))),
  );
}

const CLUSTER = `import { clusterUnavailable } from "./tests/cluster/harness.ts";
console.log("reason: " + (await clusterUnavailable()));
process.exit(0);`;
const BROWSER = `import { browserMissing } from "./tests/helpers/browser.ts";
console.log("reason: " + browserMissing());`;

let bin = "";
let empty = "";
test.before(() => {
  empty = mkdtempSync(join(tmpdir(), "hypercast-empty-path-"));
  // A redis-server that answers --version, so that the database is what is missing.
  bin = mkdtempSync(join(tmpdir(), "hypercast-fake-redis-"));
  writeFileSync(join(bin, "redis-server"), "#!/bin/sh\necho 'Redis server v=7.0.0'\n");
  chmodSync(join(bin, "redis-server"), 0o755);
});
test.after.always(() => {
  for (const dir of [empty, bin]) if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

test("cluster suite without redis-server on PATH: CI=true throws, elsewhere it is a reason to skip", async (t) => {
  const failed = await run(CLUSTER, { PATH: empty, CI: "true" });
  t.not(failed.code, 0, failed.output);
  t.regex(failed.output, /CI=true, so the cluster suite must run, but there is no redis-server binary on PATH/);
  t.notRegex(failed.output, /^reason: /m);
  const skipped = await run(CLUSTER, { PATH: empty });
  t.is(skipped.code, 0, skipped.output);
  t.regex(skipped.output, /^reason: no redis-server binary on PATH$/m);
});

test("cluster suite with a DATABASE_URL nothing answers: CI=true throws, elsewhere it is a reason to skip", async (t) => {
  const databaseUrl = `postgres://postgres@127.0.0.1:${await freePort()}/test`;
  const env = { PATH: `${bin}:${process.env["PATH"] ?? ""}`, DATABASE_URL: databaseUrl };
  const failed = await run(CLUSTER, { ...env, CI: "true" });
  t.not(failed.code, 0, failed.output);
  t.regex(
    failed.output,
    /CI=true, so the cluster suite must run, but there is no PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1/,
  );
  t.notRegex(failed.output, /^reason: /m);
  const skipped = await run(CLUSTER, env);
  t.is(skipped.code, 0, skipped.output);
  t.regex(skipped.output, /^reason: no PostgreSQL at /m);
});

test("browser tests without the browser: CI=true throws, elsewhere it is a reason to skip", async (t) => {
  const env = { PATH: process.env["PATH"] ?? "", CHROMIUM_PATH: join(empty, "no-chromium") };
  const failed = await run(BROWSER, { ...env, CI: "true" });
  t.not(failed.code, 0, failed.output);
  t.regex(failed.output, /no-chromium is missing: \.ci\/run installs Debian's chromium/);
  t.notRegex(failed.output, /^reason: /m);
  const skipped = await run(BROWSER, env);
  t.is(skipped.code, 0, skipped.output);
  t.regex(skipped.output, /^reason: .*no-chromium is missing/m);
});
