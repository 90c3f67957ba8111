/**
 * GET /health (liveness) and GET /ready (readiness) on a real server whose database sits behind a
 * TCP proxy the test cuts and restores (as tests/http/database-down.test.ts): /health stays 200
 * whatever the database does; /ready says 503 problem+json with Retry-After while the database is
 * away, promptly, and 200 again once it is back. Both answer to any Accept.
 */
import test from "ava";
import type { HttpContext } from "../../lib/http/context.ts";
import { serveHealth } from "../../lib/http/health.ts";
import { HttpProblem } from "../../lib/http/problems.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";
import type { TcpProxy } from "../helpers/tcp-proxy.ts";

/** The readiness timeout is 2 s; a refused connection should answer well before. */
const PROMPT_MS = 4000;
const RECOVERY_MS = 20000;
const ACCEPTS = [undefined, "application/json", "*/*", "text/html", "text/plain", "application/vnd.app.v3+json", "application/vnd.app.v1+json"];

let database: ProxiedDatabase;
let proxy: TcpProxy;
let app: TestServer;

test.before(async () => {
  database = await startProxiedDatabase();
  proxy = database.proxy;
  app = await startTestServer({ DATABASE_URL: database.databaseUrl });
});

test.after.always(async () => {
  await proxy?.restore();
  await app?.stop();
  await database?.close();
});

async function timed(run: () => Promise<TestResponse>): Promise<TestResponse & { ms: number }> {
  const started = performance.now();
  const res = await run();
  return { ...res, ms: performance.now() - started };
}

test.serial("GET /health: 200 {status: ok} to any Accept, never cached", async (t) => {
  for (const accept of ACCEPTS) {
    const res = await app.request("GET", "/health", accept === undefined ? {} : { accept });
    t.is(res.status, 200, `Accept: ${accept}`);
    t.deepEqual(res.body, { status: "ok" });
    t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
    t.is(res.headers.get("cache-control"), "no-store");
  }
  t.is((await app.request("HEAD", "/health")).status, 200);
  const post = await app.request("POST", "/health");
  t.is(post.status, 405);
  t.is(post.headers.get("allow"), "GET, HEAD");
});

test.serial("GET /ready: 200 with each check while the database answers, to any Accept", async (t) => {
  for (const accept of ACCEPTS) {
    const res = await app.request("GET", "/ready", accept === undefined ? {} : { accept });
    t.is(res.status, 200, `Accept: ${accept}: ${res.text}`);
    t.deepEqual(res.body, { status: "ok", checks: { database: "ok" } });
    t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
  }
});

test.serial("database cut: /ready is 503 problem+json with Retry-After, promptly; /health stays 200", async (t) => {
  await proxy.cut();
  const answers = [await timed(() => app.request("GET", "/ready")), ...(await Promise.all([1, 2, 3].map(() => timed(() => app.request("GET", "/ready", { accept: "text/plain" })))))];
  t.log(`503s answered in ${answers.map((r) => Math.round(r.ms)).join(", ")} ms`);
  for (const res of answers) {
    t.is(res.status, 503, res.text);
    t.true(res.ms < PROMPT_MS, `answered in ${Math.round(res.ms)} ms`);
    t.is(res.headers.get("content-type"), "application/problem+json");
    t.regex(res.headers.get("retry-after") ?? "", /^\d+$/);
    t.is(res.body.type, "/problems/unavailable");
    t.is(res.body.status, 503);
    t.deepEqual(res.body.checks, { database: "unavailable" });
    t.regex(res.body.detail, /database/);
    for (const leak of [/ECONN/, /127\.0\.0\.1/, /:\d{4,5}\b/, /node_modules/, /postgres/i]) t.notRegex(res.text, leak);
  }
  const health = await timed(() => app.request("GET", "/health"));
  t.is(health.status, 200);
  t.true(health.ms < 1000, "liveness never waits on the database");
});

test.serial("database back: /ready is 200 again without a restart", async (t) => {
  await proxy.restore();
  const deadline = performance.now() + RECOVERY_MS;
  let res: TestResponse;
  do {
    res = await app.request("GET", "/ready");
    if (res.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  } while (res.status !== 200 && performance.now() < deadline);
  t.is(res.status, 200, res.text);
  t.deepEqual(res.body, { status: "ok", checks: { database: "ok" } });
});

test("a check that hangs is cut off at the timeout, and concurrent probes share one run", async (t) => {
  let runs = 0;
  const ready = serveHealth({
    checks: [
      { name: "database", check: () => Promise.resolve() },
      { name: "redis", check: () => (runs++, new Promise(() => {})) },
    ],
    timeoutMs: 100,
  });
  const probe = async () => {
    const ctx = { path: "/ready", method: "GET", state: {}, set: () => {} } as unknown as HttpContext;
    const started = performance.now();
    const error = await t.throwsAsync(ready(ctx, async () => {}));
    return { error, ms: performance.now() - started };
  };
  const [a, b] = await Promise.all([probe(), probe()]);
  t.is(runs, 1);
  for (const { error, ms } of [a, b]) {
    t.true(error instanceof HttpProblem);
    t.true(ms < 1000, `${Math.round(ms)} ms`);
    t.deepEqual((error as HttpProblem).body["checks"], { database: "ok", redis: "unavailable" });
    t.regex((error as HttpProblem).body.detail ?? "", /^not ready: redis failed or did not answer within 100 ms/);
    t.is((error as HttpProblem).headers["Retry-After"], "5");
  }
});
