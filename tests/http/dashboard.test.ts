/**
 * GET /dashboard and its files over real HTTP: served by Hypercast with a CSP of their own that
 * allows exactly the page's needs (its script, its stylesheet, this origin, the socket), nothing
 * from another host, and the API's strict CSP left alone everywhere else.
 */
import test from "ava";
import { request as httpRequest } from "node:http";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { eventually } from "../helpers/processes.ts";

let app: TestServer;

test.before(async () => {
  app = await startTestServer();
});

test.after.always(async () => {
  await app?.stop();
});

function cspOf(headers: Headers): Map<string, string> {
  return new Map(
    (headers.get("content-security-policy") ?? "")
      .split(";")
      .map((d) => d.trim().split(/\s+(.*)/s) as [string, string])
      .map(([k, v]) => [k, v ?? ""]),
  );
}

test("the page is HTML that loads only its own script and stylesheet, under its own CSP", async (t) => {
  const res = await app.request("GET", "/dashboard", { accept: "text/html" });
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = cspOf(res.headers);
  t.deepEqual(Object.fromEntries(csp), {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "data:",
    "connect-src": `'self' ${app.server.socketUrl.replace(/\/socket$/, "")}`,
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
  });
  t.regex(res.text, /<script src="\/dashboard\/app\.js" defer><\/script>/);
  t.regex(res.text, /<link rel="stylesheet" href="\/dashboard\/app\.css">/);
  t.regex(res.text, new RegExp(`<meta name="hypercast-socket" content="${app.server.socketUrl}">`));
  t.notRegex(res.text, /<script>|style="|https?:\/\/(?!127\.0\.0\.1)/, "no inline script or style, no other host");
  t.is(res.headers.get("x-frame-options"), "DENY");
});

test("the script bundles the phoenix client and uPlot; the stylesheet uPlot's styles; both under the same CSP", async (t) => {
  const [script, style] = await Promise.all([
    app.request("GET", "/dashboard/app.js"),
    app.request("GET", "/dashboard/app.css"),
  ]);
  t.is(script.status, 200);
  t.is(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  t.regex(script.text, /phx_join/, "the phoenix client is in the bundle");
  t.regex(script.text, /uplot/, "uPlot is in the bundle");
  t.notRegex(script.text, /\bimport\s*\(|\bfrom\s*"/, "one self-contained file");
  t.is(style.status, 200);
  t.is(style.headers.get("content-type"), "text/css; charset=utf-8");
  t.regex(style.text, /\.uplot/);
  t.is(cspOf(script.headers).get("script-src"), "'self'");
});

test("only GET and HEAD: other methods get 405 with Allow", async (t) => {
  const res = await app.request("POST", "/dashboard", { json: {} });
  t.is(res.status, 405);
  t.is(res.headers.get("allow"), "GET, HEAD");
  t.is(res.headers.get("content-type"), "application/problem+json");
});

test("the API keeps its own strict CSP", async (t) => {
  const res = await app.request("GET", "/health");
  t.is(res.headers.get("content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
});

test("a Host header that is not a plain host never reaches the CSP or the page", async (t) => {
  const { port } = new URL(app.url);
  const answer = await new Promise<{ csp: string; body: string }>((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path: "/dashboard", headers: { host: "evil.example;script-src *'\"><x" } },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ csp: String(res.headers["content-security-policy"]), body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
  t.is(answer.csp.includes("evil"), false);
  t.regex(answer.csp, /connect-src 'self';/);
  t.notRegex(answer.body, /evil|<x/);
});

test("a v1 request with a bearer token puts its user among the snapshot's top callers of v1; a v2 request does not", async (t) => {
  const v1 = await app.signUp("Legacy");
  const v2 = await app.signUp("Current");
  t.is((await app.request("GET", `/v1/users/${v1.id}`, { token: v1.token })).status, 200);
  t.is(
    (await app.request("GET", `/users/${v2.id}`, { token: v2.token, accept: "application/vnd.app.v2+json" })).status,
    200,
  );
  // The request's telemetry event may land just after its response: poll the feed.
  const callers = await eventually(
    () => {
      const group = app.deps.dashboard.tick().callers.find((c) => c.version === 1);
      return group?.callers.some((c) => c.user_id === v1.id) === true ? group : undefined;
    },
    10_000,
    "the v1 caller in the snapshot",
  );
  t.like(
    callers.callers.find((c) => c.user_id === v1.id),
    { user_id: v1.id, requests: 1, error: 0 },
  );
  t.false(
    callers.callers.some((c) => c.user_id === v2.id),
    "a v2 caller is not a caller of the deprecated version",
  );
});
