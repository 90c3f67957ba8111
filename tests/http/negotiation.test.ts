/**
 * Version negotiation over real HTTP (README, Versions and media types): every row is an Accept × URL combination
 * against GET / and GET /users/{id}, checked for status, Content-Type, `Vary: Accept`, the v1
 * deprecation headers (and their absence on v2) and the 406 problem body.
 */
import { request } from "node:http";
import test from "ava";
import { startTestServer, type TestServer, type TestResponse } from "../helpers/http.ts";

const V1 = "application/vnd.app.v1+json";
const V2 = "application/vnd.app.v2+json";
const DEPRECATED_AT = Math.floor(Date.parse("2026-01-01T00:00:00Z") / 1000);

let app: TestServer;
let me: { id: number; token: string };
test.before(async () => {
  app = await startTestServer();
  me = await app.signUp("negotiator", { favorite_sports: ["chess", "go"] });
});
test.after.always(async () => {
  await app?.stop();
});

type Expect = 1 | 2 | 404 | 406;
interface Row {
  accept?: string;
  /** `{id}` is replaced by the signed-up user's id; paths other than / send the bearer token. */
  path: string;
  expect: Expect;
  note?: string;
}

const ROWS: Row[] = [
  { path: "/", expect: 2, note: "no Accept" },
  { path: "/users/{id}", expect: 2, note: "no Accept" },
  { accept: "", path: "/", expect: 2, note: "empty" },
  { accept: "*/*", path: "/", expect: 2 },
  { accept: "*/*", path: "/users/{id}", expect: 2 },
  { accept: "application/*", path: "/users/{id}", expect: 2 },
  { accept: "application/json", path: "/", expect: 2 },
  { accept: "application/json", path: "/users/{id}", expect: 2 },
  { accept: V1, path: "/", expect: 1 },
  { accept: V1, path: "/users/{id}", expect: 1 },
  { accept: V2, path: "/users/{id}", expect: 2 },
  { accept: "application/vnd.app+json; version=1", path: "/users/{id}", expect: 1, note: "parameter form" },
  { accept: "application/vnd.app+json;version=2", path: "/", expect: 2, note: "parameter form" },
  { accept: "application/vnd.app+json; version=2", path: "/users/{id}", expect: 2, note: "parameter form" },
  { accept: "application/vnd.app+json", path: "/users/{id}", expect: 2, note: "bare vendor type" },
  { accept: `${V1};q=0.9, ${V2};q=0.8`, path: "/users/{id}", expect: 1, note: "q ordering" },
  { accept: `${V2};q=0.8, ${V1};q=0.9`, path: "/", expect: 1, note: "q ordering, reversed" },
  { accept: `${V1};q=0.2, application/json;q=0.5`, path: "/users/{id}", expect: 2, note: "generic JSON preferred" },
  { accept: `${V1};q=0`, path: "/", expect: 406, note: "the only entry excluded" },
  { accept: `*/*, ${V2};q=0`, path: "/users/{id}", expect: 1, note: "wildcard with an exclusion" },
  { accept: `application/*, ${V1};q=0`, path: "/users/{id}", expect: 2, note: "wildcard with an exclusion" },
  { accept: `application/json, ${V2};q=0`, path: "/", expect: 1, note: "the excluded default is not served" },
  { accept: `*/*;q=0`, path: "/", expect: 406, note: "everything excluded" },
  { accept: "application/vnd.app.v3+json", path: "/", expect: 406 },
  { accept: "application/vnd.app.v3+json", path: "/users/{id}", expect: 406 },
  { accept: "application/vnd.app+json; version=3", path: "/", expect: 406 },
  { accept: "text/html", path: "/", expect: 406 },
  { accept: "text/html", path: "/users/{id}", expect: 406 },
  { accept: "text/html, application/xhtml+xml;q=0.9, */*;q=0.8", path: "/", expect: 2, note: "a browser" },
  { accept: `text/html, ${V1};q=0.5, image/png`, path: "/users/{id}", expect: 1, note: "multiple entries" },
  { accept: "APPLICATION/VND.APP.V1+JSON", path: "/users/{id}", expect: 1, note: "case-insensitive" },
  { accept: "Application/Vnd.App+Json; Version=1", path: "/", expect: 1, note: "case-insensitive parameter form" },
  { accept: `  ${V1} ;  q=0.7 ,   ${V2} ; q=0.6  `, path: "/users/{id}", expect: 1, note: "whitespace" },
  { path: "/v1", expect: 1, note: "prefix alone" },
  { path: "/v1/users/{id}", expect: 1 },
  { path: "/v2/users/{id}", expect: 2 },
  { accept: "*/*", path: "/v1/users/{id}", expect: 1 },
  { accept: "application/json", path: "/v1/", expect: 1 },
  { accept: V1, path: "/v1/users/{id}", expect: 1, note: "prefix and Accept agree" },
  { accept: "application/vnd.app+json", path: "/v1/users/{id}", expect: 1, note: "bare vendor type under a prefix" },
  { accept: `${V2}, ${V1};q=0.1`, path: "/v1/users/{id}", expect: 1, note: "prefix keeps the acceptable one" },
  { accept: V2, path: "/v1/users/{id}", expect: 406, note: "prefix conflicts with Accept" },
  { accept: V1, path: "/v2/users/{id}", expect: 406, note: "prefix conflicts with Accept" },
  {
    accept: "application/vnd.app+json; version=2",
    path: "/v1/",
    expect: 406,
    note: "prefix conflicts with the parameter form",
  },
  { accept: `application/json, ${V1};q=0`, path: "/v1/users/{id}", expect: 406, note: "pinned version excluded" },
  { path: "/v3/users/{id}", expect: 404, note: "unknown prefix" },
  { accept: V2, path: "/v3/", expect: 404, note: "unknown prefix" },
  { path: "/v10/users/{id}", expect: 404, note: "unknown prefix" },
];

// node:http, not fetch: fetch adds an `Accept: */*` of its own, and "no Accept" must mean none.
function get(row: Row): Promise<TestResponse> {
  const path = row.path.replace("{id}", String(me.id));
  const headers: Record<string, string> = {};
  if (row.accept !== undefined) headers["accept"] = row.accept;
  if (!/^(\/v\d+)?\/?$/.test(path)) headers["authorization"] = `Bearer ${me.token}`;
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of [value ?? []].flat()) responseHeaders.append(name, v);
        }
        const json = /json/.test(res.headers["content-type"] ?? "") && text !== "";
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, text, body: json ? JSON.parse(text) : text });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

test("every media type a 406 advertises is served when asked for, and the matrix sends each one", async (t) => {
  const refused = await get({ accept: "text/html", path: "/", expect: 406 });
  t.is(refused.status, 406);
  const advertised: string[] = refused.body.supported_media_types;
  t.true(advertised.length > 0);
  for (const type of advertised) {
    const res = await get({ accept: type, path: "/users/{id}", expect: 2 });
    t.is(res.status, 200, `${type}: ${res.text}`);
    const version = /v(\d+)\+json|version=(\d+)/.exec(type);
    // application/json is served as the current version.
    const expected = version === null ? V2 : `application/vnd.app.v${version[1] ?? version[2]}+json`;
    t.is(res.headers.get("content-type"), `${expected}; charset=utf-8`, type);
    t.true(
      ROWS.some((row) => row.accept === type && row.expect !== 406 && row.expect !== 404),
      `the matrix has a row that sends ${type}`,
    );
  }
});

for (const row of ROWS) {
  const label = `GET ${row.path} Accept: ${row.accept === undefined ? "(none)" : JSON.stringify(row.accept)}${row.note === undefined ? "" : ` [${row.note}]`} → ${row.expect < 10 ? `v${row.expect}` : row.expect}`;
  test(label, async (t) => {
    const res = await get(row);
    const path = row.path.replace("{id}", String(me.id));
    t.regex(res.headers.get("vary") ?? "", /\bAccept\b/i, "Vary: Accept on every response");
    if (row.expect === 404 || row.expect === 406) {
      t.is(res.status, row.expect, res.text);
      t.is(res.headers.get("content-type"), "application/problem+json");
      t.is(res.body.status, row.expect);
      t.is(res.body.instance, path);
      if (row.expect === 406) {
        t.is(res.body.type, "/problems/not-acceptable");
        const supported: string[] = res.body.supported_media_types;
        const pin = /^\/v(\d)/.exec(path)?.[1];
        const expected =
          pin === undefined
            ? [V2, V1, "application/vnd.app+json; version=2", "application/vnd.app+json; version=1", "application/json"]
            : [`application/vnd.app.v${pin}+json`, "application/json"];
        t.deepEqual([...supported].sort(), [...expected].sort());
        for (const type of expected) t.true((res.body.detail as string).includes(type), `detail names ${type}`);
      } else {
        t.is(res.body.type, "/problems/not-found");
      }
      return;
    }
    const version = row.expect;
    t.is(res.status, 200, res.text);
    t.is(res.headers.get("content-type"), `application/vnd.app.v${version}+json; charset=utf-8`);
    t.is(res.body._links.self.type, `application/vnd.app.v${version}+json`);
    if (path.includes("/users/")) {
      t.deepEqual(
        version === 1 ? res.body.favorite_sport : res.body.favorite_sports,
        version === 1 ? "chess" : ["chess", "go"],
      );
    }
    const successor = (res.headers.get("link") ?? "")
      .split(/,\s*(?=<)/)
      .filter((l) => l.includes('rel="successor-version"'));
    if (version === 1) {
      t.is(res.headers.get("deprecation"), `@${DEPRECATED_AT}`);
      t.regex(res.headers.get("deprecation") ?? "", /^@\d+$/, "RFC 9745: @<epoch seconds>");
      const sunset = res.headers.get("sunset") ?? "";
      t.regex(
        sunset,
        /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/,
        "IMF-fixdate",
      );
      t.is(sunset, "Wed, 30 Jun 2027 00:00:00 GMT");
      const target = path.replace(/^\/v1(?=\/|$)/, "/v2");
      t.deepEqual(successor, [`<${target}>; rel="successor-version"; type="${V2}"`]);
    } else {
      t.is(res.headers.get("deprecation"), null);
      t.is(res.headers.get("sunset"), null);
      t.deepEqual(successor, []);
    }
  });
}

test("the v1 successor link keeps the query string", async (t) => {
  const res = await app.request("GET", "/users?limit=1", { accept: V1, token: me.token });
  t.is(res.status, 200);
  t.true((res.headers.get("link") ?? "").includes(`</users?limit=1>; rel="successor-version"; type="${V2}"`));
});

test("Vary: Accept also on a 401 and on a v1 error", async (t) => {
  const unauthorized = await app.request("GET", "/users", { accept: V1 });
  t.is(unauthorized.status, 401);
  t.regex(unauthorized.headers.get("vary") ?? "", /\bAccept\b/);
  t.is(unauthorized.headers.get("content-type"), "application/problem+json");
  const missing = await app.request("GET", "/v1/users/999999", { token: me.token });
  t.is(missing.status, 404);
  t.regex(missing.headers.get("vary") ?? "", /\bAccept\b/);
});
