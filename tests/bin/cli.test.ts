/**
 * The process as operators run it: `node --import tsx lib/bin/cli.ts serve` on the embedded
 * database, then SIGTERM. It must print both URLs, serve both, and on SIGTERM send leave diffs
 * and close sockets with 1012 before exiting 0 (CONTRACT §1).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { freePort } from "../helpers/ports.ts";
import { openRaw } from "../realtime/raw.ts";
import { within } from "../realtime/helpers.ts";


async function post(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  return (await res.json()) as Record<string, unknown>;
}

test("serve prints both URLs, serves both, and drains on SIGTERM: leave diff, 1012, exit 0", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "hypercast-cli-"));
  const [port, socketPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--import", "tsx", "lib/bin/cli.ts", "serve"], {
    env: { ...process.env, PORT: String(port), SOCKET_PORT: String(socketPort), DATA_DIR: dataDir, LOG_LEVEL: "warn", PASSWORD_HASH_COST: "10", DATABASE_URL: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    let stdout = "";
    await within(60_000, "the start banner", new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes("Hypercast socket")) resolve();
      });
    }));
    t.true(stdout.includes(`Hypercast API     http://127.0.0.1:${port}`));
    t.true(stdout.includes(`Hypercast socket  ws://127.0.0.1:${socketPort}/socket`));

    const api = `http://127.0.0.1:${port}`;
    await post(`${api}/users`, { name: "Cli", email: "cli@example.com", password: "a long password" });
    const session = await post(`${api}/sessions`, { email: "cli@example.com", password: "a long password" });
    const room = await post(`${api}/rooms`, { name: "drain" }, session["token"] as string);
    const topic = `room:${room["id"] as number}`;
    const url = `ws://127.0.0.1:${socketPort}/socket/websocket?vsn=2.0.0&token=${session["socket_token"] as string}`;
    const [watcher, leaver] = [await openRaw(url), await openRaw(url)];
    for (const [i, client] of [watcher, leaver].entries()) {
      client.sendFrame([String(i + 1), String(i + 1), topic, "phx_join", {}]);
      t.is((await client.nextEvent("phx_reply"))[4]["status"], "ok");
    }

    // Let the join diffs go out first (they are coalesced over a short window).
    let joins = 0;
    while (joins < 2) {
      const diff = await watcher.nextEvent("presence_diff");
      for (const entry of Object.values(diff[4]["joins"] as Record<string, { metas: unknown[] }>)) joins += entry.metas.length;
    }

    child.kill("SIGTERM");
    const diff = await watcher.nextEvent("presence_diff");
    const leaves = diff[4]["leaves"] as Record<string, { metas: unknown[] }>;
    t.is(Object.values(leaves).reduce((n, entry) => n + entry.metas.length, 0), 2, "both sockets leave before the close");
    t.is((await within(15_000, "close", watcher.closed)).code, 1012);
    t.is((await within(15_000, "close", leaver.closed)).code, 1012);
    t.is(await within(30_000, "exit", exited), 0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
