/**
 * What every response carries, whatever it is (success, each kind of error, preflight, probe,
 * scrape): the security headers that suit a JSON API, Strict-Transport-Security only in
 * production, no X-Powered-By; and an X-Request-Id, the client's when well-formed, else a fresh
 * UUID. Also: with CORS_ORIGINS unset, CORS is off (no Access-Control-* headers at all).
 */
import test from "ava";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-resource-policy": "same-origin",
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let app: TestServer;
let user: { id: number; token: string };

test.before(async () => {
  app = await startTestServer();
  user = await app.signUp("Headers");
});
test.after.always(async () => {
  await app?.stop();
});

/** One response of each kind the API gives. */
async function everyKindOfResponse(server: TestServer, token?: string): Promise<Array<[string, TestResponse]>> {
  return [
    ["200 GET /", await server.request("GET", "/")],
    [
      "201 POST /rooms",
      await server.request("POST", "/rooms", { json: { name: "headers" }, ...(token === undefined ? {} : { token }) }),
    ],
    ["400 malformed JSON", await server.request("POST", "/users", { raw: "{", contentType: "application/json" })],
    ["401 no token", await server.request("GET", "/users")],
    ["404 unknown route", await server.request("GET", "/nowhere")],
    ["405", await server.request("PUT", "/users")],
    ["406", await server.request("GET", "/", { accept: "application/vnd.app.v3+json" })],
    [
      "413",
      await server.request("POST", "/users", {
        raw: `{"name":"${"x".repeat(1_100_000)}"}`,
        contentType: "application/json",
      }),
    ],
    [
      "415",
      await server.request("POST", "/users", { raw: "name=x", contentType: "application/x-www-form-urlencoded" }),
    ],
    ["422", await server.request("POST", "/users", { json: {} })],
    ["OPTIONS /users", await server.request("OPTIONS", "/users")],
    [
      "preflight /users",
      await server.request("OPTIONS", "/users", {
        headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
      }),
    ],
    ["GET /health", await server.request("GET", "/health")],
    ["GET /ready", await server.request("GET", "/ready")],
    ["GET /metrics", await server.request("GET", "/metrics", { accept: "text/plain" })],
  ];
}

test("security headers on every response, errors included; no HSTS outside production; no X-Powered-By", async (t) => {
  const responses = await everyKindOfResponse(app, user.token);
  t.deepEqual(
    responses.map(([, res]) => res.status),
    [200, 201, 400, 401, 404, 405, 406, 413, 415, 422, 200, 200, 200, 200, 200],
  );
  for (const [name, res] of responses) {
    for (const [header, value] of Object.entries(SECURITY_HEADERS))
      t.is(res.headers.get(header), value, `${name}: ${header}`);
    t.is(res.headers.get("strict-transport-security"), null, name);
    t.is(res.headers.get("x-powered-by"), null, name);
  }
});

test("CORS is off when CORS_ORIGINS is unset: no Access-Control-* headers, even to a preflight", async (t) => {
  const responses = [
    await app.request("OPTIONS", "/users", {
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
    }),
    await app.request("GET", "/", { headers: { origin: "https://app.example.com" } }),
  ];
  for (const res of responses) {
    t.deepEqual(
      [...res.headers.keys()].filter((name) => name.startsWith("access-control-")),
      [],
    );
  }
});

test("X-Request-Id: a fresh UUID per request unless the client sends a well-formed one; always echoed, errors too", async (t) => {
  const generated = await Promise.all([
    app.request("GET", "/"),
    app.request("GET", "/nowhere"),
    app.request("GET", "/users"),
  ]);
  const ids = generated.map((res) => res.headers.get("x-request-id") ?? "");
  for (const id of ids) t.regex(id, UUID);
  t.is(new Set(ids).size, ids.length, "unique");

  const kept = ["a", "abc-123", "trace.id_42", "A".repeat(128), "0af7651916cd43dd8448eb211c80319c"];
  for (const id of kept) {
    for (const [path, status] of [
      ["/", 200],
      ["/nowhere", 404],
      ["/users", 401],
      ["/health", 200],
    ] as const) {
      const res = await app.request("GET", path, { headers: { "x-request-id": id } });
      t.is(res.status, status);
      t.is(res.headers.get("x-request-id"), id, `${path} keeps ${id.slice(0, 20)}`);
    }
  }
  const replaced = ["A".repeat(129), "has space", "semi;colon", 'quote"d', "ünïcode", "new\\nline", "<script>", "a/b"];
  for (const id of replaced) {
    const res = await app.request("GET", "/", { headers: { "x-request-id": id } });
    t.regex(res.headers.get("x-request-id") ?? "", UUID, `replaces ${JSON.stringify(id.slice(0, 20))}`);
  }
  const res = await app.request("GET", "/", {
    accept: "application/vnd.app.v3+json",
    headers: { "x-request-id": "on-406" },
  });
  t.is(res.status, 406);
  t.is(res.headers.get("x-request-id"), "on-406");
});

test("production: Strict-Transport-Security on every response, errors included", async (t) => {
  const production = await startTestServer({ NODE_ENV: "production" });
  try {
    const user = await production.signUp("Prod");
    for (const [name, res] of await everyKindOfResponse(production, user.token)) {
      t.is(res.headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains", name);
      t.is(res.headers.get("x-content-type-options"), "nosniff", name);
    }
  } finally {
    await production.stop();
  }
});
