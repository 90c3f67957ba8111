/**
 * `npm run dashboard:screenshot` — the README's picture of the dashboard, taken from a live run:
 * a server on an in-memory database, a little traffic (v1 and v2 calls by a few users, sockets
 * joined to rooms with presence, messages broadcast), then Debian's chromium logs in as an
 * operator and photographs the page into docs/dashboard.png. Loopback only; stops by itself.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { Socket } from "phoenix";
import WebSocket from "ws";
import { loadConfig } from "../../lib/config.ts";
import { closeDeps, createDeps } from "../../lib/deps.ts";
import { startServer } from "../../lib/server.ts";
import { launchChromium } from "../../tests/helpers/browser.ts";

const OUT = new URL("../../docs/dashboard.png", import.meta.url);
const PASSWORD = "correct horse battery";
const OPERATOR = "ops@example.com";

const config = loadConfig({
  SECRET_KEY_BASE: randomBytes(32).toString("hex"),
  LOG_LEVEL: "warn",
  NODE_ENV: "test",
  PASSWORD_HASH_COST: "10",
  PORT: "0",
  SOCKET_PORT: "0",
  ADMIN_EMAILS: OPERATOR,
  NODE_NAME: "web-1",
  RATE_LIMITS: "off",
});
const deps = await createDeps(config, { inMemory: true });
const server = await startServer(deps, { host: "127.0.0.1", port: 0, socketPort: 0 });
const sockets: Socket[] = [];

async function call(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; accept?: string } = {},
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { accept: options.accept ?? "application/vnd.app.v2+json" };
  if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${server.httpUrl}${path}`, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  const text = await res.text();
  return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
}

async function user(name: string): Promise<{ id: number; token: string; socketToken: string }> {
  const email = `${name.toLowerCase()}@example.com`;
  const created = await call("POST", "/users", { json: { name, email, password: PASSWORD } });
  const session = await call("POST", "/sessions", { json: { email, password: PASSWORD } });
  return {
    id: created["id"] as number,
    token: session["token"] as string,
    socketToken: session["socket_token"] as string,
  };
}

try {
  await user("Ops").catch(() => undefined);
  const people = await Promise.all(["Ada", "Grace", "Linus", "Barbara", "Ken"].map(user));
  const rooms = await Promise.all(
    ["lobby", "support", "launch"].map((name, i) =>
      call("POST", "/rooms", { token: people[i]!.token, json: { name } }),
    ),
  );
  // Sockets with presence: more in the lobby than elsewhere.
  for (const [r, count] of [
    [0, 24],
    [1, 9],
    [2, 4],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const who = people[i % people.length]!;
      const socket = new Socket(server.socketUrl, {
        transport: WebSocket,
        params: { token: who.socketToken },
      } as ConstructorParameters<typeof Socket>[1]);
      socket.connect();
      socket.channel(`room:${rooms[r]!["id"] as number}`, {}).join();
      sockets.push(socket);
    }
  }
  let running = true;
  // Traffic: Ada and Grace still on v1 (Ada the most), everyone on v2, messages in every room.
  const traffic = (async () => {
    for (let tick = 0; running; tick++) {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 6; i++)
        calls.push(call("GET", "/users", { token: people[0]!.token, accept: "application/vnd.app.v1+json" }));
      for (let i = 0; i < 2; i++)
        calls.push(
          call("GET", `/users/${people[2]!.id}`, { token: people[1]!.token, accept: "application/vnd.app.v1+json" }),
        );
      for (const p of people) calls.push(call("GET", "/rooms", { token: p.token }));
      calls.push(call("GET", "/users/999999", { token: people[3]!.token }));
      calls.push(
        call("POST", `/rooms/${rooms[tick % 3]!["id"] as number}/messages`, {
          token: people[tick % 3]!.token,
          json: { body: `hello ${tick}` },
        }),
      );
      await Promise.all(calls);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  await new Promise((r) => setTimeout(r, 20_000));

  const chromium = await launchChromium();
  const page = await chromium.context.newPage();
  await page.goto(`${server.httpUrl}/dashboard`);
  await page.fill('input[name="email"]', OPERATOR);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForSelector('#status[data-state="live"]', { timeout: 20_000 });
  await new Promise((r) => setTimeout(r, 4000));
  mkdirSync(new URL("./", OUT), { recursive: true });
  await page.screenshot({ path: OUT.pathname, fullPage: true });
  console.log(`wrote ${OUT.pathname}`);
  running = false;
  await traffic;
  await chromium.close();
} finally {
  for (const socket of sockets) socket.disconnect();
  await server.stop();
  await closeDeps(deps);
}
process.exit(0);
