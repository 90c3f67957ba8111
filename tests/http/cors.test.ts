/**
 * CORS from the CORS_ORIGINS allow-list on a real server: preflights for every route (any
 * version prefix, operational endpoints too) answered 204 before negotiation; allowed origins
 * echoed with the exposed headers, on errors too; other origins get no CORS headers; never
 * credentials. CORS off by default is checked in security-headers.test.ts (a default server).
 */
import test from "ava";
import { loadConfig } from "../../lib/config.ts";
import { ALLOWED_HEADERS } from "../../lib/http/cors.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

const ORIGIN = "https://app.example.com";
const DEV_ORIGIN = "http://localhost:5173";

let app: TestServer;
let user: { id: number; token: string };

test.before(async () => {
  app = await startTestServer({ CORS_ORIGINS: ` ${ORIGIN} ,${DEV_ORIGIN}` });
  user = await app.signUp("Cors");
});
test.after.always(async () => {
  await app?.stop();
});

const preflight = (
  path: string,
  method: string,
  origin = ORIGIN,
  requestHeaders = "authorization, content-type, idempotency-key",
) =>
  app.request("OPTIONS", path, {
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": requestHeaders },
  });

test("preflight for every route, method and prefix: 204 with what the browser needs", async (t) => {
  const cases: Array<[string, string]> = [
    ["/", "GET"],
    ["/users", "POST"],
    ["/users/1", "PATCH"],
    ["/users/1", "DELETE"],
    ["/sessions", "DELETE"],
    ["/socket-tokens", "POST"],
    ["/rooms/1/messages", "POST"],
    ["/rooms/1/messages/2", "GET"],
    ["/v1/rooms", "POST"],
    ["/v2/users/1", "PATCH"],
    ["/health", "GET"],
    ["/metrics", "GET"],
  ];
  for (const [path, method] of cases) {
    for (const origin of [ORIGIN, DEV_ORIGIN]) {
      const res = await preflight(path, method, origin);
      t.is(res.status, 204, `${method} ${path}`);
      t.is(res.headers.get("access-control-allow-origin"), origin);
      t.regex(res.headers.get("access-control-allow-methods") ?? "", new RegExp(`\\b${method}\\b`));
      const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(",");
      for (const header of ALLOWED_HEADERS) t.true(allowed.includes(header.toLowerCase()), header);
      t.regex(res.headers.get("access-control-max-age") ?? "", /^\d+$/);
      t.regex(res.headers.get("vary") ?? "", /\bOrigin\b/);
      t.is(res.headers.get("access-control-allow-credentials"), null);
      t.is(res.text, "");
    }
  }
});

test("an allowed origin's requests: its origin echoed and the API's headers exposed, errors included", async (t) => {
  const ok = await app.request("GET", `/v1/users/${user.id}`, { token: user.token, headers: { origin: ORIGIN } });
  const created = await app.request("POST", "/rooms", {
    token: user.token,
    json: { name: "cors" },
    headers: { origin: DEV_ORIGIN },
  });
  const unauthorized = await app.request("GET", "/users", { headers: { origin: ORIGIN } });
  const missing = await app.request("GET", "/nowhere", { headers: { origin: ORIGIN } });
  t.deepEqual([ok.status, created.status, unauthorized.status, missing.status], [200, 201, 401, 404]);
  for (const [res, origin] of [
    [ok, ORIGIN],
    [created, DEV_ORIGIN],
    [unauthorized, ORIGIN],
    [missing, ORIGIN],
  ] as const) {
    t.is(res.headers.get("access-control-allow-origin"), origin);
    t.regex(res.headers.get("vary") ?? "", /\bOrigin\b/);
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").split(",");
    for (const header of [
      "Location",
      "Link",
      "Deprecation",
      "Sunset",
      "X-Request-Id",
      "ETag",
      "Retry-After",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "RateLimit-Policy",
      "RateLimit",
    ]) {
      t.true(exposed.includes(header), header);
    }
    t.is(res.headers.get("access-control-allow-credentials"), null);
  }
});

test("origins not on the list, and requests without Origin, get no CORS headers", async (t) => {
  for (const origin of [
    "https://evil.example.com",
    "https://app.example.com.evil.example",
    "http://app.example.com",
    "null",
  ]) {
    const pre = await preflight("/users", "POST", origin);
    t.is(pre.headers.get("access-control-allow-origin"), null, origin);
    t.is(pre.headers.get("access-control-allow-methods"), null, origin);
    const res = await app.request("GET", "/", { headers: { origin } });
    t.is(res.status, 200);
    t.is(res.headers.get("access-control-allow-origin"), null, origin);
    t.is(res.headers.get("access-control-expose-headers"), null, origin);
  }
  const plain = await app.request("GET", "/");
  t.is(plain.headers.get("access-control-allow-origin"), null);
});

test("CORS_ORIGINS: bare origins or * alone; anything else stops the boot naming the variable", (t) => {
  const config = (value: string) =>
    loadConfig({ NODE_ENV: "test", SECRET_KEY_BASE: "x".repeat(32), CORS_ORIGINS: value });
  t.deepEqual(config("").corsOrigins, []);
  t.deepEqual(config("https://a.example, http://localhost:3000").corsOrigins, [
    "https://a.example",
    "http://localhost:3000",
  ]);
  t.deepEqual(config("*").corsOrigins, ["*"]);
  for (const bad of [
    "https://a.example/",
    "https://a.example/app",
    "a.example",
    "https://A.example",
    "*, https://a.example",
    "ftp://",
  ]) {
    const error = t.throws(() => config(bad), undefined, bad);
    t.regex(error?.message ?? "", /^invalid configuration: CORS_ORIGINS /, bad);
  }
  t.regex(t.throws(() => config("https://A.example/"))?.message ?? "", /did you mean "https:\/\/a\.example"\?/);
});

test("CORS_ORIGINS=* on the real server: any origin, answered with * (no credentials, so no need to echo), errors included", async (t) => {
  const open = await startTestServer({ CORS_ORIGINS: "*" });
  try {
    const someone = await open.signUp("Anywhere");
    const origin = "https://anywhere.example";
    const pre = await open.request("OPTIONS", "/v2/rooms", {
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, idempotency-key",
      },
    });
    t.is(pre.status, 204);
    t.is(pre.headers.get("access-control-allow-origin"), "*");
    t.regex(pre.headers.get("access-control-allow-methods") ?? "", /\bPOST\b/);
    t.is(pre.headers.get("access-control-allow-credentials"), null);
    const created = await open.request("POST", "/rooms", {
      token: someone.token,
      json: { name: "open" },
      headers: { origin },
    });
    const unauthorized = await open.request("GET", "/users", { headers: { origin: "http://localhost:1234" } });
    t.deepEqual([created.status, unauthorized.status], [201, 401]);
    for (const res of [created, unauthorized]) {
      t.is(res.headers.get("access-control-allow-origin"), "*");
      t.true((res.headers.get("access-control-expose-headers") ?? "").split(",").includes("Location"));
      t.is(res.headers.get("access-control-allow-credentials"), null);
    }
  } finally {
    await open.stop();
  }
});
