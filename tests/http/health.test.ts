/**
 * GET /health (liveness) and GET /ready (readiness) on a real server whose database sits behind a
 * TCP proxy the test cuts and restores (as tests/http/database-down.test.ts): /health stays 200
 * whatever the database does; /ready says 503 problem+json with Retry-After while the database is
 * away, promptly, and 200 again once it is back; a database that hangs (the proxy holds every byte)
 * gets its 503 at the check's timeout. Redis trouble (a redis-server of this file's own, SIGSTOPped)
 * shows in /health's body and never fails /ready (README, Health and readiness: readiness = the database). Both answer
 * to any Accept.
 */
import test from "ava";
import { Redis } from "ioredis";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";
import type { TcpProxy } from "../helpers/tcp-proxy.ts";
import { eventually, startRedisServer } from "../helpers/processes.ts";

/** The readiness timeout (lib/http/health.ts). */
const READY_TIMEOUT_MS = 2000;
/** A refused connection answers well before the timeout, a hung one at it: 2 s of margin for a loaded machine. */
const PROMPT_MS = READY_TIMEOUT_MS + 2000;
const RECOVERY_MS = 20000;
const ACCEPTS = [
  undefined,
  "application/json",
  "*/*",
  "text/html",
  "text/plain",
  "application/vnd.app.v3+json",
  "application/vnd.app.v1+json",
];

let database: ProxiedDatabase;
let proxy: TcpProxy;
let app: TestServer;

test.before(async () => {
  database = await startProxiedDatabase();
  proxy = database.proxy;
  app = await startTestServer(database.env);
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
  const answers = [
    await timed(() => app.request("GET", "/ready")),
    ...(await Promise.all([1, 2, 3].map(() => timed(() => app.request("GET", "/ready", { accept: "text/plain" }))))),
  ];
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
  // That liveness never waits on the database is shown with a database that hangs, below.
  t.is((await app.request("GET", "/health")).status, 200);
});

/** Retries `run` until it answers 200 or RECOVERY_MS passes; returns the last answer. */
async function until200(run: () => Promise<TestResponse>): Promise<TestResponse> {
  const deadline = performance.now() + RECOVERY_MS;
  let res: TestResponse;
  do {
    res = await run();
    if (res.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  } while (res.status !== 200 && performance.now() < deadline);
  return res;
}

test.serial("database back: /ready is 200 again without a restart", async (t) => {
  await proxy.restore();
  const res = await until200(() => app.request("GET", "/ready"));
  t.is(res.status, 200, res.text);
  t.deepEqual(res.body, { status: "ok", checks: { database: "ok" } });
});

test.serial(
  "a database that hangs: /ready answers 503 at its check's timeout while the database still says nothing; /health stays 200",
  async (t) => {
    await until200(() => app.request("GET", "/ready"));
    proxy.pause(); // connections stay open and no byte gets through: a hung database, not a refused one
    try {
      const probes = await Promise.all([1, 2, 3].map(() => timed(() => app.request("GET", "/ready"))));
      t.log(`503s answered in ${probes.map((r) => Math.round(r.ms)).join(", ")} ms`);
      for (const res of probes) {
        t.is(res.status, 503, res.text);
        t.is(res.headers.get("content-type"), "application/problem+json");
        t.is(res.headers.get("retry-after"), "5");
        t.deepEqual(res.body.checks, { database: "unavailable" });
        t.regex(res.body.detail, /^not ready: database failed or did not answer within 2000 ms/);
        // The database was never let go, so the answer came from the timeout.
        t.true(res.ms >= READY_TIMEOUT_MS - 50, `answered in ${Math.round(res.ms)} ms, before the timeout?`);
        t.true(res.ms < PROMPT_MS, `answered in ${Math.round(res.ms)} ms`);
      }
      t.is((await app.request("GET", "/health")).status, 200);
    } finally {
      proxy.resume();
    }
    const back = await until200(() => app.request("GET", "/ready"));
    t.deepEqual(back.body, { status: "ok", checks: { database: "ok" } });
  },
);

test.serial(
  "a Redis that hangs (SIGSTOP): /health reports it, /ready stays 200 (the database is what gates readiness)",
  async (t) => {
    const redis = await startRedisServer();
    const info = new Redis(redis.url);
    const pid = Number(/process_id:(\d+)/.exec(await info.info("server"))?.[1]);
    info.disconnect();
    t.true(pid > 0);
    const clustered = await startTestServer({
      REDIS_URL: redis.url,
      CLUSTER_HEARTBEAT_MS: "200",
      CLUSTER_LEASE_MS: "1000",
    });
    try {
      t.deepEqual((await clustered.request("GET", "/health")).body, { status: "ok", checks: { redis: "ok" } });
      process.kill(pid, "SIGSTOP");
      try {
        const health = await eventually(
          async () => {
            const res = await clustered.request("GET", "/health");
            return res.body.checks?.redis === "unavailable" ? res : undefined;
          },
          RECOVERY_MS,
          "/health to report Redis unavailable",
        );
        t.is(health.status, 200);
        const ready = await clustered.request("GET", "/ready");
        t.is(ready.status, 200, ready.text);
        t.deepEqual(ready.body, { status: "ok", checks: { database: "ok" } });
      } finally {
        process.kill(pid, "SIGCONT");
      }
      await eventually(
        async () => ((await clustered.request("GET", "/health")).body.checks?.redis === "ok" ? true : undefined),
        RECOVERY_MS,
        "/health to report Redis ok again",
      );
    } finally {
      process.kill(pid, "SIGCONT");
      await clustered.stop();
      await redis.kill();
    }
  },
);
