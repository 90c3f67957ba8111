/**
 * Sunset and brownouts, driven by a clock the test moves (never by sleeping): inside a
 * V1_BROWNOUTS window and on and after V1_SUNSET, what only v1 could serve gets 410
 * `/problems/version-gone` with the successor link — the /v1 prefix whatever the Accept, an
 * Accept naming only v1, a caller pinned to v1 naming no version, a socket upgrade in v1 —
 * with `Retry-After` to the window's end and a detail naming it during a brownout; everything
 * else is negotiated as if v1 were not listed. Outside the windows v1 works as before.
 * `GET /versions` and the v1 OpenAPI document follow the clock.
 */
import test, { type ExecutionContext } from "ava";
import WebSocket from "ws";
import { mediaType } from "../../lib/versions.ts";
import { assertProblem, parseLinkHeader } from "../helpers/api.ts";
import { manualClock } from "../helpers/clock.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

const BEFORE = "2027-05-04T15:59:59Z";
const WINDOW = "2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z";
const INSIDE = "2027-05-04T16:15:00Z"; // 45 minutes before the window ends
const AFTER_WINDOW = "2027-05-04T17:00:00Z";
const SUNSET = "2027-06-30T00:00:00Z";

const clock = manualClock(BEFORE);
let app: TestServer;
let pinnedV1: { id: number; token: string; socketToken: string };
let pinnedV2: { id: number; token: string; socketToken: string };

test.before(async () => {
  app = await startTestServer(
    { V1_SUNSET: "2027-06-30", V1_BROWNOUTS: "2027-05-04T16:00:00Z/PT1H, 2027-05-11T16:00:00Z/2027-05-11T16:30:00Z" },
    { clock },
  );
  pinnedV1 = await signUp("/v1");
  pinnedV2 = await signUp("/v2");
});
test.after.always(async () => {
  await app?.stop();
});

let counter = 0;
async function signUp(prefix: string) {
  const email = `sunset-${process.pid}-${++counter}@example.com`;
  const created = await app.request("POST", `${prefix}/users`, {
    json: { name: "Sunset", email, password: "correct horse battery" },
  });
  const session = await app.request("POST", "/sessions", { json: { email, password: "correct horse battery" } });
  return {
    id: created.body.id as number,
    token: session.body.token as string,
    socketToken: session.body.socket_token as string,
  };
}

function assertGone(t: ExecutionContext, res: TestResponse, successor: string, brownout: boolean): void {
  assertProblem(t, res, 410);
  t.is(res.body.type, "/problems/version-gone");
  t.is(res.body.version, 1);
  t.is(res.body.successor_version, 2);
  t.deepEqual(
    parseLinkHeader(res.headers.get("link")).filter((l) => l.rel === "successor-version"),
    [{ href: successor, rel: "successor-version", type: mediaType(2) }],
  );
  if (brownout) {
    t.true((res.body.detail as string).includes(WINDOW), `the detail names the window: ${res.body.detail}`);
    t.is(res.headers.get("retry-after"), String(45 * 60), "Retry-After: until the window ends");
  } else {
    t.regex(res.body.detail, /sunset on 2027-06-30T00:00:00\.000Z/);
    t.is(res.headers.get("retry-after"), null, "a sunset is for good");
  }
}

/** What only v1 could serve: the successor each should point to, and its status while v1 is offered. */
function onlyV1() {
  return [
    ["the /v1 prefix", () => app.request("GET", "/v1/rooms", { token: pinnedV2.token }), "/v2/rooms", 200],
    ["the /v1 prefix, whatever the Accept", () => app.request("GET", "/v1/", { accept: mediaType(2) }), "/v2/", 406],
    [
      "the /v1 prefix, with an unacceptable Accept",
      () => app.request("GET", "/v1/", { accept: "text/html" }),
      "/v2/",
      406,
    ],
    ["an Accept naming only v1", () => app.request("GET", "/", { accept: mediaType(1) }), "/", 200],
    [
      "the parameter form",
      () => app.request("GET", "/", { accept: "application/vnd.app+json; version=1, text/html;q=0.5" }),
      "/",
      200,
    ],
    ["a caller pinned to v1, no Accept", () => app.request("GET", "/rooms", { token: pinnedV1.token }), "/rooms", 200],
    [
      "a caller pinned to v1, */*",
      () => app.request("GET", `/users/${pinnedV1.id}`, { token: pinnedV1.token, accept: "*/*" }),
      `/users/${pinnedV1.id}`,
      200,
    ],
    [
      "a caller pinned to v1, a write",
      () => app.request("POST", "/rooms", { token: pinnedV1.token, json: { name: "nope" } }),
      "/rooms",
      201,
    ],
  ] as const;
}

/** What is still served in v2 while v1 is withdrawn. */
async function assertV2StillServed(t: ExecutionContext): Promise<void> {
  const cases: Array<[string, Promise<TestResponse>]> = [
    [
      "v1 preferred, generic JSON acceptable",
      app.request("GET", "/", { accept: `${mediaType(1)}, application/json;q=0.5` }),
    ],
    ["v1 preferred, v2 acceptable", app.request("GET", "/", { accept: `${mediaType(1)}, ${mediaType(2)};q=0.1` })],
    ["anonymous, no Accept", app.request("GET", "/")],
    ["pinned to v2", app.request("GET", "/rooms", { token: pinnedV2.token })],
    ["pinned to v1 but naming v2", app.request("GET", "/rooms", { token: pinnedV1.token, accept: mediaType(2) })],
    ["pinned to v1, the /v2 prefix", app.request("GET", "/v2/rooms", { token: pinnedV1.token })],
  ];
  for (const [what, pending] of cases) {
    const res = await pending;
    t.is(res.status, 200, `${what}: ${res.text}`);
    t.is(res.headers.get("content-type"), `${mediaType(2)}; charset=utf-8`, what);
  }
  const v3 = await app.request("GET", "/", { accept: "application/vnd.app.v3+json" });
  assertProblem(t, v3, 406);
  t.false((v3.body.supported_media_types as string[]).includes(mediaType(1)), "a withdrawn version is not offered");
}

/** A socket upgrade's 410 points at the same endpoint in the successor version. */
function assertSocketSuccessor(t: ExecutionContext, headers: Record<string, string | string[] | undefined>): void {
  const link = headers["link"];
  t.deepEqual(
    parseLinkHeader(typeof link === "string" ? link : null).filter((l) => l.rel === "successor-version"),
    [{ href: "/socket/websocket?api_version=2", rel: "successor-version", type: mediaType(2) }],
  );
}

/** The HTTP answer to a WebSocket upgrade. */
function upgrade(
  query: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${app.server.socketUrl}/websocket?vsn=2.0.0&${query}`);
    ws.on("open", () => {
      ws.close();
      resolve({ status: 101, headers: {}, body: "" });
    });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on("error", (error) => reject(error));
  });
}

test.serial("before a brownout, v1 works as before", async (t) => {
  clock.set(BEFORE);
  for (const [what, send, , status] of onlyV1()) {
    const res = await send();
    t.is(res.status, status, `${what}: ${res.text}`);
    if (status === 406) continue; // a prefix with an Accept it cannot serve, as always
    t.is(res.headers.get("content-type"), `${mediaType(1)}; charset=utf-8`, what);
    t.is(new Date(res.headers.get("sunset")!).toISOString(), "2027-06-30T00:00:00.000Z");
  }
  t.is((await upgrade(`token=${pinnedV1.socketToken}`)).status, 101);
  t.is((await upgrade(`token=${pinnedV2.socketToken}&api_version=1`)).status, 101);
});

test.serial(
  "inside a brownout: 410 with Retry-After to the window's end and the window named; v2 unaffected",
  async (t) => {
    clock.set(INSIDE);
    for (const [what, send, successor] of onlyV1()) {
      const res = await send();
      t.log(what);
      assertGone(t, res, successor, true);
    }
    await assertV2StillServed(t);
    const versions = await app.request("GET", "/versions");
    const v1 = versions.body.versions.find((v: { version: number }) => v.version === 1);
    t.is(v1.status, "browned_out");
    t.deepEqual(v1.brownouts, [
      { start: "2027-05-04T16:00:00.000Z", end: "2027-05-04T17:00:00.000Z" },
      { start: "2027-05-11T16:00:00.000Z", end: "2027-05-11T16:30:00.000Z" },
    ]);
    const pin = await app.request("PATCH", `/v2/users/${pinnedV2.id}`, {
      token: pinnedV2.token,
      json: { api_version: 1 },
    });
    assertProblem(t, pin, 422);
    t.is(pin.body.errors[0].pointer, "/api_version");
    t.true((pin.body.errors[0].detail as string).includes(WINDOW));
  },
);

test.serial(
  "inside a brownout a socket in v1 gets HTTP 410 at the upgrade: api_version=1, or a v1 pin and no api_version",
  async (t) => {
    clock.set(INSIDE);
    for (const query of [`token=${pinnedV2.socketToken}&api_version=1`, `token=${pinnedV1.socketToken}`]) {
      const res = await upgrade(query);
      t.is(res.status, 410, query);
      t.is(res.headers["retry-after"], String(45 * 60));
      t.is(res.headers["content-type"], "application/problem+json");
      assertSocketSuccessor(t, res.headers);
      const body = JSON.parse(res.body);
      t.is(body.type, "/problems/version-gone");
      t.true((body.detail as string).includes(WINDOW));
    }
    t.is((await upgrade(`token=${pinnedV1.socketToken}&api_version=2`)).status, 101, "naming v2 connects");
    t.is((await upgrade(`token=${pinnedV2.socketToken}`)).status, 101);
  },
);

test.serial("when the window ends v1 is served again", async (t) => {
  clock.set(AFTER_WINDOW);
  for (const [what, send, , status] of onlyV1()) t.is((await send()).status, status, what);
  t.is((await app.request("GET", "/versions")).body.versions[1].status, "deprecated");
  t.is((await upgrade(`token=${pinnedV1.socketToken}`)).status, 101);
});

test.serial(
  "on and after the sunset: 410 for good, v2 unaffected, the pin must move, the documents say so",
  async (t) => {
    clock.set(SUNSET);
    for (const [what, send, successor] of onlyV1()) {
      t.log(what);
      assertGone(t, await send(), successor, false);
    }
    await assertV2StillServed(t);
    const upgraded = await upgrade(`token=${pinnedV2.socketToken}&api_version=1`);
    t.is(upgraded.status, 410);
    t.is(upgraded.headers["retry-after"], undefined);
    assertSocketSuccessor(t, upgraded.headers);
    const pinned = await upgrade(`token=${pinnedV1.socketToken}`);
    t.is(pinned.status, 410);
    assertSocketSuccessor(t, pinned.headers);

    const versions = await app.request("GET", "/versions");
    t.is(versions.body.versions[1].status, "sunset");
    const doc = (await app.request("GET", "/openapi/v1.json")).body;
    t.regex(doc.info.description, /\*\*Sunset\*\* on 2027-06-30: this version is no longer served/);
    t.is(doc.info["x-sunset-reached"], true);
    t.is((await app.request("GET", "/openapi/v2.json")).body.info["x-sunset-reached"], undefined);

    assertProblem(
      t,
      await app.request("PATCH", `/v2/users/${pinnedV2.id}`, { token: pinnedV2.token, json: { api_version: 1 } }),
      422,
    );
    assertProblem(
      t,
      await app.request("PATCH", `/v2/users/${pinnedV2.id}`, { token: pinnedV1.token, json: { api_version: 1 } }),
      403,
    ); // someone else's record: 403 before the withdrawn version is judged
    // A caller pinned to v1 names v2 once to move the pin; then naming no version works again.
    const moved = await app.request("PATCH", `/users/${pinnedV1.id}`, {
      token: pinnedV1.token,
      accept: mediaType(2),
      json: { api_version: 2 },
    });
    t.is(moved.status, 200, moved.text);
    const after = await app.request("GET", "/rooms", { token: pinnedV1.token });
    t.is(after.status, 200);
    t.is(after.headers.get("content-type"), `${mediaType(2)}; charset=utf-8`);
  },
);

test.serial("requests answered, by version served and by pinned version, in /metrics", async (t) => {
  clock.set(BEFORE);
  const series = async (name: string) => {
    const text = (await app.request("GET", "/metrics")).text;
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.slice(name.length + 1));
  };
  const v1Served = await series('hypercast_http_requests_total{api_version="1"}');
  const pinned2 = await series('hypercast_http_requests_by_pinned_version_total{pinned_version="2"}');
  const anonymous = await series('hypercast_http_requests_by_pinned_version_total{pinned_version="none"}');
  await Promise.all([
    app.request("GET", "/v1/rooms", { token: pinnedV2.token }),
    app.request("GET", "/v1/rooms", { token: pinnedV2.token }),
    app.request("GET", "/v1/"),
  ]);
  t.is(await series('hypercast_http_requests_total{api_version="1"}'), v1Served + 3);
  t.is(await series('hypercast_http_requests_by_pinned_version_total{pinned_version="2"}'), pinned2 + 2);
  // The scrapes themselves are anonymous requests too.
  t.true((await series('hypercast_http_requests_by_pinned_version_total{pinned_version="none"}')) >= anonymous + 1);
  const text = (await app.request("GET", "/metrics")).text;
  const goneBefore = await series('hypercast_http_requests_version_gone_total{api_version="1"}');
  clock.set(INSIDE);
  await Promise.all([
    app.request("GET", "/v1/"),
    app.request("GET", "/rooms", { token: pinnedV2.token, accept: mediaType(1) }),
  ]);
  clock.set(BEFORE);
  t.is(
    await series('hypercast_http_requests_version_gone_total{api_version="1"}'),
    goneBefore + 2,
    "the 410s of a brownout, by version",
  );
  const callers = app.deps.dashboard.tick().callers.find((c) => c.version === 1);
  t.true(
    (callers?.callers ?? []).some((c) => c.user_id === pinnedV2.id),
    "whom the brownout broke: the caller of the 410, among v1's top callers",
  );
  const labels = new Set(
    [...text.matchAll(/hypercast_http_requests_by_pinned_version_total\{pinned_version="([^"]*)"\}/g)].map((m) => m[1]),
  );
  t.deepEqual([...labels].sort(), ["1", "2", "none"], "bounded: the versions and none");
});
