/**
 * The process's JSON logs, read back from a logger writing into an array, on a real server at
 * the most verbose level: every request line carries its request id, user, API version, route
 * pattern, status and duration; and no password, bearer token, socket token or SECRET_KEY_BASE
 * reaches the log, whatever the client does (sign-up, login, authenticated calls, failures,
 * sockets).
 */
import test from "ava";
import WebSocket from "ws";
import type { TelemetryEvent } from "../../lib/telemetry/index.ts";
import { createLogger } from "../../lib/telemetry/logger.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

const PASSWORD = "correct horse battery";
const OTHER_PASSWORD = "Tr0ub4dor&3-not-mine";

let app: TestServer;
const raw: string[] = [];
const events: TelemetryEvent[] = [];

test.before(async () => {
  app = await startTestServer({}, { logger: createLogger("trace", { write: (line: string) => void raw.push(line) }) });
  app.deps.telemetry.attach((e) => events.push(e));
});
test.after.always(async () => {
  await app?.stop();
});

const lines = () => raw.map((line) => JSON.parse(line) as Record<string, unknown>);
const requestLines = () => lines().filter((l) => l["msg"] === "request");

/** Opens a socket and waits until it is open (or refused), then closes it. */
function touchSocket(query: string, join?: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${app.server.socketUrl}/websocket?vsn=2.0.0&${query}`);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve("timeout");
    }, 5000);
    const done = (outcome: string) => {
      clearTimeout(timer);
      ws.close();
      resolve(outcome);
    };
    ws.on("open", () => {
      if (join === undefined) return done("open");
      ws.send(JSON.stringify(["1", "1", join, "phx_join", {}]));
      ws.on("message", () => done("joined"));
    });
    ws.on("error", () => done("refused"));
    ws.on("unexpected-response", () => done("refused"));
  });
}

test.serial("no password, bearer token, socket token or SECRET_KEY_BASE is ever logged", async (t) => {
  const secrets: string[] = [PASSWORD, OTHER_PASSWORD, app.deps.config.secretKeyBase];

  // Sign-up in both versions, a taken e-mail, a body that fails validation, malformed JSON.
  const ada = await app.signUp("Ada");
  const grace = await app.request("POST", "/v1/users", {
    json: { name: "Grace", email: "grace@example.com", password: OTHER_PASSWORD, favorite_sport: "Chess" },
  });
  t.is(grace.status, 201);
  t.is(
    (await app.request("POST", "/users", { json: { name: "Again", email: ada.email, password: OTHER_PASSWORD } }))
      .status,
    409,
  );
  t.is(
    (await app.request("POST", "/users", { json: { name: "", email: "not an e-mail", password: OTHER_PASSWORD } }))
      .status,
    422,
  );
  t.is(
    (await app.request("POST", "/users", { raw: `{"password": "${OTHER_PASSWORD}"`, contentType: "application/json" }))
      .status,
    400,
  );

  // Login: good, wrong password, unknown e-mail.
  const session = await app.request("POST", "/sessions", { json: { email: ada.email, password: PASSWORD } });
  t.is(session.status, 201);
  secrets.push(ada.token, ada.socketToken, session.body.token, session.body.socket_token);
  t.is((await app.request("POST", "/sessions", { json: { email: ada.email, password: OTHER_PASSWORD } })).status, 401);
  t.is(
    (await app.request("POST", "/sessions", { json: { email: "nobody@example.com", password: OTHER_PASSWORD } }))
      .status,
    401,
  );

  // Authenticated calls, a fresh socket token, a bad token, a revoked token.
  const token = session.body.token as string;
  t.is((await app.request("GET", `/users/${ada.id}`, { token })).status, 200);
  t.is((await app.request("PATCH", `/v1/users/${ada.id}`, { token, json: { name: "Ada L." } })).status, 200);
  const room = await app.request("POST", "/rooms", { token, json: { name: "lobby" } });
  t.is(room.status, 201);
  t.is((await app.request("POST", `/rooms/${room.body.id}/messages`, { token, json: { body: "hello" } })).status, 201);
  const fresh = await app.request("POST", "/socket-tokens", { token });
  t.is(fresh.status, 201);
  secrets.push(fresh.body.socket_token);
  const forged = `${token.slice(0, -4)}AAAA`;
  secrets.push(forged);
  t.is((await app.request("GET", "/users", { token: forged })).status, 401);
  t.is(
    (
      await app.request("GET", "/users", {
        headers: { authorization: `Basic ${Buffer.from(`ada:${PASSWORD}`).toString("base64")}` },
      })
    ).status,
    401,
  );
  secrets.push(Buffer.from(`ada:${PASSWORD}`).toString("base64"));

  // Sockets: the token travels in the query string; a good one, a tampered one.
  t.is(await touchSocket(`token=${encodeURIComponent(fresh.body.socket_token)}`, `room:${room.body.id}`), "joined");
  t.is(await touchSocket(`token=${encodeURIComponent(`${fresh.body.socket_token}x`)}`), "refused");

  // Log out, then use the dead token.
  t.is((await app.request("DELETE", "/sessions", { token })).status, 204);
  t.is((await app.request("GET", "/users", { token })).status, 401);
  // Every socket that opened has logged its close before the log is searched (polled, bounded).
  const count = (msg: string) => lines().filter((l) => l["msg"] === msg).length;
  for (const deadline = Date.now() + 10_000; count("socket.close") < count("socket.open");) {
    if (Date.now() > deadline) {
      t.fail(`${count("socket.open")} sockets opened, ${count("socket.close")} closes logged`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.true(count("socket.open") > 0);

  t.true(requestLines().length >= 18, `${requestLines().length} request lines`);
  const all = raw.join("");
  for (const secret of secrets) {
    t.false(all.includes(secret), `a secret (${secret.slice(0, 4)}…) appears in the log`);
  }
  t.notRegex(all, /Bearer /i);
  t.notRegex(all, /authorization/i);
});

test.serial(
  "each request line: request id (as echoed), user id, api version, route pattern, status, duration",
  async (t) => {
    const user = await app.signUp("Lines");
    const before = raw.length;
    const res = await app.request("GET", `/v1/users/${user.id}`, { token: user.token });
    t.is(res.status, 200);
    const id = res.headers.get("x-request-id");
    t.truthy(id);
    const line = requestLines().find((l) => l["request_id"] === id);
    t.like(line, {
      level: 30,
      method: "GET",
      path: `/v1/users/${user.id}`,
      route: "/users/:id",
      status: 200,
      api_version: 1,
      user_id: user.id,
      service: "hypercast",
    });
    t.is(typeof line?.["duration_ms"], "number");
    t.true(raw.length > before);

    const failed = await app.request("GET", "/users/999999", {
      token: user.token,
      headers: { "x-request-id": "client-trace.42" },
    });
    t.is(failed.status, 404);
    t.is(failed.headers.get("x-request-id"), "client-trace.42");
    t.like(
      requestLines().find((l) => l["request_id"] === "client-trace.42"),
      { route: "/users/:id", status: 404, api_version: 2, user_id: user.id },
    );
  },
);

test.serial("database queries are reported as db.query.stop events with their duration", async (t) => {
  const before = events.length;
  const user = await app.signUp("Queries");
  t.is((await app.request("GET", "/users", { token: user.token })).status, 200);
  const queries = events
    .slice(before)
    .filter((e): e is Extract<TelemetryEvent, { event: "db.query.stop" }> => e.event === "db.query.stop");
  t.true(queries.length >= 3, `${queries.length} queries`);
  for (const q of queries) {
    t.true(q.measurements.duration_ms >= 0 && q.measurements.duration_ms < 5000);
    t.is(q.metadata.outcome, "ok");
  }
  t.true(queries.some((q) => q.metadata.method === "insert"));
  t.true(queries.some((q) => q.metadata.method === "select" || q.metadata.method === "first"));
  t.true(
    lines().some((l) => l["msg"] === "db.query.stop" && typeof l["duration_ms"] === "number"),
    "queries are logged at debug",
  );
});

test.serial("a failing query is reported with outcome error", async (t) => {
  const before = events.length;
  await t.throwsAsync(app.deps.db.raw("select * from no_such_table"));
  const failed = events.slice(before).find((e) => e.event === "db.query.stop");
  t.like(failed, { event: "db.query.stop", metadata: { method: "raw", outcome: "error" } });
});
