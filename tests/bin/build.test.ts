/**
 * Production runs compiled JavaScript: `npm run build` emits dist/, and plain `node
 * dist/lib/bin/cli.js serve` (no TypeScript loader, no npm wrapper) boots on the embedded
 * database, finds its schemas and migrations from dist/, answers /health with 200, serves the
 * dashboard's page and script (bundled from dist/lib/dashboard/page), and exits 0 on SIGTERM. One test, since the build costs a compile of the whole server.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { within } from "../realtime/helpers.ts";

test("npm run build emits dist/, and node dist/lib/bin/cli.js serve answers /health with 200 and serves /dashboard", async (t) => {
  await promisify(execFile)("npm", ["run", "build"], { timeout: 240_000 });
  const dataDir = mkdtempSync(join(tmpdir(), "hypercast-build-"));
  const child = spawn(process.execPath, ["dist/lib/bin/cli.js", "serve"], {
    env: {
      ...process.env,
      PORT: "0",
      SOCKET_PORT: "0",
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      PASSWORD_HASH_COST: "10",
      DATABASE_URL: "",
      NODE_OPTIONS: "",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    let stdout = "";
    await within(
      60_000,
      "the start banner",
      new Promise<void>((resolve) => {
        child.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes("Hypercast socket")) resolve();
        });
      }),
    );
    const url = /Hypercast API\s+(http:\S+)/.exec(stdout)?.[1];
    t.truthy(url, stdout);
    const res = await fetch(`${url}/health`);
    t.is(res.status, 200);
    // The versioned API too: its request schemas are read from dist/schemas at boot.
    const created = await fetch(`${url}/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Built", email: "built@example.com", password: "a-long-password" }),
    });
    t.is(created.status, 201, await created.text());
    // The dashboard: its page and its script, bundled at run time from dist/lib/dashboard/page with
    // the runtime dependencies (phoenix, uPlot, esbuild), and no tsconfig.json left there to mislead esbuild.
    t.false(existsSync("dist/lib/dashboard/page/tsconfig.json"), "page/tsconfig.json is not copied to dist/");
    const page = await fetch(`${url}/dashboard`);
    t.is(page.status, 200);
    t.regex(await page.text(), /<script src="\/dashboard\/app\.js" defer><\/script>/);
    const script = await fetch(`${url}/dashboard/app.js`);
    t.is(script.status, 200);
    t.is(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    const bundle = await script.text();
    t.regex(bundle, /phx_join/, "the phoenix client is in the bundle");
    t.regex(bundle, /uplot/, "uPlot is in the bundle");
    child.kill("SIGTERM");
    t.is(await within(30_000, "exit after SIGTERM", exited), 0);
  } finally {
    child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
