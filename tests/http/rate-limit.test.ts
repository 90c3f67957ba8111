/**
 * Rate limits: API requests per bearer token, failed logins per e-mail address and per client
 * address; 429 problems with Retry-After and the draft RateLimit-Policy / RateLimit fields.
 */
import test from "ava";
import { assertProblem } from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

// Two servers, because every request here comes from 127.0.0.1: one where the per-address limit
// is out of the way, one that exercises it.
let app: TestServer;
let perAddress: TestServer;
test.before(async () => {
  [app, perAddress] = await Promise.all([
    startTestServer({ API_RATE_LIMIT: "5", API_RATE_WINDOW_SECONDS: "60", LOGIN_FAILURES_PER_EMAIL: "3", LOGIN_FAILURES_PER_ADDRESS: "1000", LOGIN_WINDOW_SECONDS: "900" }),
    startTestServer({ LOGIN_FAILURES_PER_EMAIL: "100", LOGIN_FAILURES_PER_ADDRESS: "4" }),
  ]);
});
test.after.always(async () => {
  await Promise.all([app?.stop(), perAddress?.stop()]);
});

/** `"api";r=3;t=60` → {name, r, t} */
function parseState(header: string | null): { name: string; r: number; t: number } {
  const match = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(header ?? "");
  if (match === null) throw new Error(`not a RateLimit field: ${header}`);
  return { name: match[1]!, r: Number(match[2]), t: Number(match[3]) };
}

test("API requests are limited per bearer token, with RateLimit fields on every answer and 429 past the quota", async (t) => {
  const ada = await app.signUp("Ada");
  const bob = await app.signUp("Bob");
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await app.request("GET", `/users/${ada.id}`, { token: ada.token });
    t.is(res.status, 200);
    t.is(res.headers.get("ratelimit-policy"), '"api";q=5;w=60');
    const state = parseState(res.headers.get("ratelimit"));
    t.true(state.t >= 1 && state.t <= 60);
    remaining.push(state.r);
  }
  t.deepEqual(remaining, [4, 3, 2, 1, 0]);

  const limited = await app.request("GET", `/users/${ada.id}`, { token: ada.token });
  assertProblem(t, limited, 429);
  t.is(limited.body.type, "/problems/rate-limited");
  const retryAfter = Number(limited.headers.get("retry-after"));
  t.true(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  t.is(limited.headers.get("ratelimit-policy"), '"api";q=5;w=60');
  t.deepEqual(parseState(limited.headers.get("ratelimit")), { name: "api", r: 0, t: retryAfter });

  // Another token has its own quota; requests without one are not counted here.
  t.is((await app.request("GET", `/users/${bob.id}`, { token: bob.token })).status, 200);
  const anonymous = await app.request("GET", "/");
  t.is(anonymous.status, 200);
  t.is(anonymous.headers.get("ratelimit"), null);
});

test.serial("failed logins are limited per e-mail address; a success forgives them", async (t) => {
  const ada = await app.signUp("Ada");
  const wrong = { email: ada.email, password: "not the password" };
  const right = { email: ada.email, password: "correct horse battery" };

  for (let i = 0; i < 2; i++) t.is((await app.request("POST", "/sessions", { json: wrong })).status, 401);
  t.is((await app.request("POST", "/sessions", { json: right })).status, 201, "a success resets the e-mail's count");
  for (let i = 0; i < 3; i++) t.is((await app.request("POST", "/sessions", { json: wrong })).status, 401);

  // The e-mail has used its 3 failures: even the right password waits now.
  for (const body of [wrong, right, { ...right, email: ada.email.toUpperCase() }]) {
    const res = await app.request("POST", "/sessions", { json: body });
    assertProblem(t, res, 429);
    t.is(res.headers.get("ratelimit-policy"), '"login-email";q=3;w=900');
    const retryAfter = Number(res.headers.get("retry-after"));
    t.true(retryAfter > 800 && retryAfter <= 900, `Retry-After: ${retryAfter}`);
    t.is(parseState(res.headers.get("ratelimit")).r, 0);
  }
  // Other accounts are untouched.
  const bob = await app.signUp("Bob");
  t.is((await app.request("POST", "/sessions", { json: { email: bob.email, password: "correct horse battery" } })).status, 201);
  // Unknown e-mail addresses are counted the same way, so the limit reveals nothing.
  const ghost = { email: "ghost@example.com", password: "whatever" };
  for (let i = 0; i < 3; i++) t.is((await app.request("POST", "/sessions", { json: ghost })).status, 401);
  assertProblem(t, await app.request("POST", "/sessions", { json: ghost }), 429);
});

test("failed logins are limited per client address, across e-mail addresses", async (t) => {
  const ada = await perAddress.signUp("Ada");
  for (let i = 0; i < 4; i++) {
    const res = await perAddress.request("POST", "/sessions", { json: { email: `nobody${i}@example.com`, password: "guess" } });
    t.is(res.status, 401);
  }
  const res = await perAddress.request("POST", "/sessions", { json: { email: ada.email, password: "correct horse battery" } });
  assertProblem(t, res, 429);
  t.is(res.headers.get("ratelimit-policy"), '"login-address";q=4;w=900');
  t.truthy(res.headers.get("retry-after"));
  t.regex(res.body.detail, /client address/);
});
