/**
 * The database goes away and comes back, no mocks: the app talks to its database through a TCP
 * proxy (tests/helpers/tcp-proxy.ts) that the test cuts and restores. With DATABASE_URL the
 * proxy fronts that PostgreSQL server; without it, an in-memory PGlite served over TCP by
 * @electric-sql/pglite-socket. While cut, every request that needs the database gets a 503
 * problem with Retry-After and nothing internal, promptly; once restored, the same running
 * server recovers on its own.
 */
import test from "ava";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";
import type { TcpProxy } from "../helpers/tcp-proxy.ts";

/** How long a request may take to fail while the database is away. */
const PROMPT_MS = 8000;
/** How long the server may take to notice the database is back. */
const RECOVERY_MS = 20000;

let database: ProxiedDatabase;
let proxy: TcpProxy;
let app: TestServer;
let user: { id: number; token: string; email: string };

test.before(async () => {
  database = await startProxiedDatabase();
  proxy = database.proxy;
  app = await startTestServer(database.env);
  user = await app.signUp("resilient");
});

test.after.always(async () => {
  await proxy?.restore();
  await app?.stop();
  await database?.close();
});

const me = () => app.request("GET", `/users/${user.id}`, { token: user.token });

async function timed(run: () => Promise<TestResponse>): Promise<TestResponse & { ms: number }> {
  const started = performance.now();
  const res = await run();
  return { ...res, ms: performance.now() - started };
}

/** Retries `run` until it answers 200 or the deadline passes; returns the last answer. */
async function until200(run: () => Promise<TestResponse>, deadlineMs: number): Promise<TestResponse> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const res = await run();
    if (res.status === 200 || performance.now() > deadline) return res;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.serial("the app reaches the database through the proxy", async (t) => {
  const res = await me();
  t.is(res.status, 200, res.text);
  t.true(proxy.accepted > 0);
});

test.serial("database cut: 503 problem+json with Retry-After, promptly, nothing internal", async (t) => {
  t.is((await me()).status, 200); // a pooled connection is open when the cut comes
  await proxy.cut();
  const attempts = [
    () => me(),
    () => me(),
    () => app.request("GET", "/users", { token: user.token }),
    () => app.request("POST", "/sessions", { json: { email: user.email, password: "correct horse battery" } }),
    () => app.request("POST", "/rooms", { json: { name: "during the outage" }, token: user.token }),
  ];
  const sequential: Array<TestResponse & { ms: number }> = [];
  for (const attempt of attempts) sequential.push(await timed(attempt));
  const concurrent = await Promise.all(attempts.map((attempt) => timed(attempt)));
  t.log(`503s answered in ${[...sequential, ...concurrent].map((r) => Math.round(r.ms)).join(", ")} ms`);
  for (const res of [...sequential, ...concurrent]) {
    t.is(res.status, 503, res.text);
    t.true(res.ms < PROMPT_MS, `answered in ${Math.round(res.ms)} ms`);
    t.is(res.headers.get("content-type"), "application/problem+json");
    t.regex(res.headers.get("vary") ?? "", /\bAccept\b/);
    t.regex(res.headers.get("retry-after") ?? "", /^\d+$/);
    t.is(res.body.type, "/problems/unavailable");
    t.is(res.body.status, 503);
    for (const leak of [
      /ECONN/,
      /127\.0\.0\.1/,
      /:\d{4,5}\b/,
      /\/work\//,
      /node_modules/,
      /\bselect\b/i,
      /\bat \S+ \(/,
      /postgres/i,
    ]) {
      t.notRegex(res.text, leak);
    }
  }
  // What needs no database keeps working.
  t.is((await app.request("GET", "/")).status, 200);
});

test.serial("database back on the same port: the running server recovers by itself", async (t) => {
  await proxy.restore();
  const started = performance.now();
  const res = await until200(me, RECOVERY_MS);
  t.log(`recovered after ${Math.round(performance.now() - started)} ms`);
  t.is(res.status, 200, res.text);
  const again = await Promise.all([
    me(),
    app.request("GET", "/users", { token: user.token }),
    app.request("POST", "/rooms", { json: { name: "after the outage" }, token: user.token }),
  ]);
  t.deepEqual(
    again.map((r) => r.status),
    [200, 200, 201],
  );
});

test.serial("a second outage and recovery behave the same", async (t) => {
  await proxy.cut();
  const down = await timed(me);
  t.is(down.status, 503, down.text);
  t.true(down.ms < PROMPT_MS);
  await proxy.restore();
  t.is((await until200(me, RECOVERY_MS)).status, 200);
});

test.serial(
  "a database that accepts connections but never answers: 503 at the connect timeout, not 500; then it recovers",
  async (t) => {
    await proxy.cut(); // the pool's open connections go, so the next request opens a new one…
    await proxy.restore();
    proxy.pause(); // …which the proxy accepts and then holds: no handshake ever completes
    let hung: TestResponse;
    try {
      hung = await me();
    } finally {
      proxy.resume();
    }
    t.is(hung.status, 503, hung.text);
    t.is(hung.body.type, "/problems/unavailable");
    t.regex(hung.headers.get("retry-after") ?? "", /^\d+$/);
    t.is((await until200(me, RECOVERY_MS)).status, 200);
  },
);
