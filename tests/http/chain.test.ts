/**
 * Route chain steps (lib/http/chain.ts, route-steps.ts) against the OpenAPI documents and real
 * answers: every status a step declares is listed for every route that has the step, in both
 * versions' documents; and each declared status is produced by a real request through a route
 * with that step, on a real server, and that answer is documented for its route. A step that
 * gains a status without a request here that produces it fails the test.
 */
import test, { type ExecutionContext } from "ava";
import { contractOf, type ChainStep } from "../../lib/http/chain.ts";
import { composeRoutes, type ComposedRoute } from "../../lib/http/router.ts";
import { routes } from "../../lib/http/routes.ts";
import { mediaType, type ApiVersion } from "../../lib/versions.ts";
import { PROBLEMS } from "../../lib/http/problems.ts";
import { manualClock } from "../helpers/clock.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

type Json = Record<string, any>;

// After V1's sunset: v1 requests get 410, v2 works.
const clock = manualClock("2027-07-01T00:00:00Z");
let app: TestServer;
/** Tight limits, so each limit's 429 takes a request or two. */
let tight: TestServer;
let composed: ComposedRoute[];
/** tight's one sign-up (per address). */
let tightUser: { id: number; token: string; email: string };

test.before(async () => {
  // One after the other: two PGlite instances migrating at once can outlast knex's acquire timeout on a loaded machine.
  app = await startTestServer({ V1_SUNSET: "2027-06-30", BODY_LIMIT_BYTES: "2048" }, { clock });
  tight = await startTestServer({ API_RATE_LIMIT: "1", SIGNUPS_PER_ADDRESS: "1", LOGIN_FAILURES_PER_EMAIL: "1" });
  tightUser = await tight.signUp("tight");
  composed = composeRoutes(app.deps, routes(app.deps, { socketUrl: () => "ws://unused" }), app.deps.limiter);
});
test.after.always(async () => {
  await Promise.all([app?.stop(), tight?.stop()]);
});

async function documents(server: TestServer): Promise<Map<ApiVersion, Json>> {
  const docs = new Map<ApiVersion, Json>();
  for (const v of [1, 2] as const) docs.set(v, (await server.request("GET", `/openapi/v${v}.json`)).body);
  return docs;
}

function operation(doc: Json, route: ComposedRoute["route"]): Json {
  return doc.paths[route.path.replace(/:(\w+)/g, "{$1}")][route.method];
}

/** The statuses a step declares in a version's document. */
function statusesOf(step: ChainStep, version: ApiVersion): string[] {
  const contract = contractOf(step, { version, deprecated: app.deps.config.versions.deprecated.includes(version) });
  const problems = (contract.problems ?? []).map((p) =>
    String(typeof p.kind === "string" ? PROBLEMS[p.kind].status : p.kind.status),
  );
  return [...new Set([...problems, ...Object.keys(contract.responses ?? {})])].sort();
}

test("every status a step declares is documented for every route that has the step, in both documents", async (t) => {
  const docs = await documents(app);
  let checked = 0;
  for (const { route, steps } of composed) {
    for (const step of steps) {
      for (const version of [1, 2] as const) {
        const op = operation(docs.get(version)!, route);
        for (const status of statusesOf(step, version)) {
          t.truthy(op.responses[status], `${route.name} (v${version}) documents ${status} of ${step.name}`);
          checked++;
        }
      }
    }
  }
  t.true(checked > 100);
});

type Producer = (
  t: ExecutionContext,
) => Promise<{ server: TestServer; version: ApiVersion; method: string; path: string; res: TestResponse }>;

let users = 0;
async function user(server: TestServer) {
  return server.signUp(`chain${++users}`);
}

async function call(
  server: TestServer,
  version: ApiVersion,
  method: string,
  path: string,
  options: Parameters<TestServer["request"]>[2] = {},
) {
  const res = await server.request(method, `/v${version}${path}`, options);
  return { server, version, method, path, res };
}

/**
 * For each step and each status it declares: a request that gets that status through a route
 * with the step. Two need more than a request and are driven where they are the subject.
 */
const PRODUCERS: Record<string, Record<string, Producer | string>> = {
  translateErrors: { "503": "tests/http/database-down.test.ts (the database cut through a TCP proxy)" },
  limitRequests: {
    "429": async () => {
      const u = tightUser;
      await tight.request("GET", `/v2/users/${u.id}`, { token: u.token });
      return call(tight, 2, "GET", `/users/${u.id}`, { token: u.token });
    },
  },
  negotiateVersion: {
    "406": async () => {
      const u = await user(app);
      return call(app, 2, "GET", `/users/${u.id}`, { token: u.token, accept: mediaType(1) });
    },
    "410": async () => {
      const u = await user(app);
      return call(app, 1, "GET", `/users/${u.id}`, { token: u.token });
    },
  },
  conditionalGet: {
    "304": async () => {
      const u = await user(app);
      const first = await app.request("GET", `/v2/users/${u.id}`, { token: u.token });
      return call(app, 2, "GET", `/users/${u.id}`, {
        token: u.token,
        headers: { "if-none-match": first.headers.get("etag") ?? "" },
      });
    },
  },
  requireUser: { "401": async () => call(app, 2, "GET", "/users") },
  acceptBody: {
    "400": async () =>
      call(app, 2, "POST", "/rooms", {
        token: (await user(app)).token,
        raw: "{not json",
        contentType: "application/json",
      }),
    "413": async () =>
      call(app, 2, "POST", "/rooms", { token: (await user(app)).token, json: { name: "x".repeat(4096) } }),
    "415": async () =>
      call(app, 2, "POST", "/rooms", { token: (await user(app)).token, raw: "hi", contentType: "text/plain" }),
    "422": async () => call(app, 2, "POST", "/rooms", { token: (await user(app)).token, json: { name: "" } }),
  },
  limitLoginAttempts: {
    "429": async () => {
      const u = tightUser;
      await tight.request("POST", "/v2/sessions", { json: { email: u.email, password: "wrong password" } });
      return call(tight, 2, "POST", "/sessions", { json: { email: u.email, password: "wrong password" } });
    },
  },
  limitSignUps: {
    // tight's one sign-up per address went to tightUser.
    "429": async () =>
      call(tight, 2, "POST", "/users", {
        json: { name: "Twice", email: `twice-${process.pid}@example.com`, password: "correct horse battery" },
      }),
  },
  honorIdempotencyKeys: {
    "400": async () =>
      call(app, 2, "POST", "/rooms", {
        token: (await user(app)).token,
        json: { name: "keyed" },
        headers: { "idempotency-key": "k".repeat(256) },
      }),
    "409": "tests/http/idempotency.test.ts (the first request held in the database through a TCP proxy)",
    "422": async () => {
      const token = (await user(app)).token;
      const headers = { "idempotency-key": `chain-${process.pid}` };
      await app.request("POST", "/v2/rooms", { token, json: { name: "first" }, headers });
      return call(app, 2, "POST", "/rooms", { token, json: { name: "second" }, headers });
    },
  },
  pathIds: {
    "404": async () => call(app, 2, "GET", "/users/not-an-id", { token: (await user(app)).token }),
  },
  pagination: {
    "400": async () => call(app, 2, "GET", "/users?limit=0", { token: (await user(app)).token }),
  },
};

const stepNames = () =>
  [...new Set(composed.flatMap((c) => c.steps.map((s) => s.name)))].filter((name) => name !== "action");

test("every status each step declares is produced by a real request, and that answer is documented for its route", async (t) => {
  t.timeout(120_000);
  const docs = new Map([
    [app, await documents(app)],
    [tight, await documents(tight)],
  ]);
  for (const name of stepNames()) {
    const withStep = composed.filter((c) => c.steps.some((s) => s.name === name));
    const step = withStep[0]!.steps.find((s) => s.name === name)!;
    const declared = [...new Set([...statusesOf(step, 1), ...statusesOf(step, 2)])];
    t.deepEqual(
      Object.keys(PRODUCERS[name] ?? {}).sort(),
      declared.sort(),
      `a producer for each status ${name} declares`,
    );
    for (const status of declared) {
      const producer = PRODUCERS[name]?.[status];
      if (typeof producer !== "function") continue; // driven by the file it names
      const { server, version, method, path, res } = await producer(t);
      t.is(String(res.status), status, `${name}: ${method} ${path} → ${res.status} ${res.text}`);
      const route = withStep.find(
        (c) =>
          c.route.method === method.toLowerCase() &&
          new RegExp(`^${c.route.path.replace(/:\w+/g, "[^/]+")}$`).test(path.split("?")[0]!),
      );
      t.truthy(route, `${method} ${path} goes through a route with ${name}`);
      t.truthy(
        operation(docs.get(server)!.get(version)!, route!.route).responses[status],
        `${route?.route.name} documents ${status}`,
      );
    }
  }
});

test("the steps named as driven elsewhere are driven there", async (t) => {
  const { readFile } = await import("node:fs/promises");
  for (const entries of Object.values(PRODUCERS)) {
    for (const [status, producer] of Object.entries(entries)) {
      if (typeof producer !== "string") continue;
      const file = producer.split(" ")[0]!;
      const text = await readFile(new URL(`../../${file}`, import.meta.url), "utf8");
      t.true(text.includes(status), `${file} drives ${status}`);
    }
  }
});

test("each route documents its action's own problems", async (t) => {
  const docs = await documents(app);
  for (const { route } of composed) {
    for (const kind of route.problems ?? []) {
      for (const version of [1, 2] as const)
        t.truthy(
          operation(docs.get(version)!, route).responses[String(PROBLEMS[kind].status)],
          `${route.name} v${version}: ${kind}`,
        );
    }
  }
});
