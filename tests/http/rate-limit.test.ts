/**
 * Rate limits as attackers meet them: bursts sent at once (Promise.all), never loops, against every
 * limit — requests per user whatever the number of tokens, requests without a valid token per
 * client address, failed logins per e-mail and per address (every login test at the production
 * password cost, scrypt N=2^17),
 * sign-ups per address, the password queue under a flood — plus TRUST_PROXY and RATE_LIMITS=off.
 * Every server logs into an array, and each test ends by scanning it for the secrets it used.
 */
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { createLogger } from "../../lib/telemetry/logger.ts";
import { assertProblem } from "../helpers/api.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

const PASSWORD = "correct horse battery";
/** The production password cost (the config default): every test of login limits runs at it. */
const PRODUCTION_COST = { PASSWORD_HASH_COST: "17" };
/** The production password queue (config defaults), where the test is about it. */
const PRODUCTION_QUEUE = { PASSWORD_HASH_CONCURRENCY: "2", PASSWORD_HASH_QUEUE: "16", PASSWORD_HASH_PER_ADDRESS: "2" };

interface Logged {
  app: TestServer;
  lines: string[];
}

/** A server of the test's own, stopped when the test ends. Tests run one at a time: production-cost hashing is heavy. */
async function serve(t: ExecutionContext, env: Record<string, string>): Promise<Logged> {
  const lines: string[] = [];
  const app = await startTestServer(env, {
    logger: createLogger("trace", { write: (line: string) => void lines.push(line) }),
  });
  t.teardown(() => app.stop());
  return { app, lines };
}

/** `"api";r=3;t=60` → {name, r, t} */
function parseState(header: string | null): { name: string; r: number; t: number } {
  const match = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(header ?? "");
  if (match === null) throw new Error(`not a RateLimit field: ${header}`);
  return { name: match[1]!, r: Number(match[2]), t: Number(match[3]) };
}

function count(responses: TestResponse[], status: number): number {
  return responses.filter((r) => r.status === status).length;
}

function burst<T>(n: number, send: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => send(i)));
}

/** No line of the log holds any of the secrets (e-mail addresses, passwords, hashes, tokens). */
function assertNoSecrets(t: ExecutionContext, lines: string[], secrets: string[]): void {
  const all = lines.join("");
  t.true(lines.length > 0, "the server logged");
  for (const secret of secrets) t.false(all.includes(secret), `a secret (${secret.slice(0, 6)}…) appears in the log`);
  t.notRegex(all, /scrypt\$/, "no password hash appears in the log");
}

test.serial("API requests are limited per user: four tokens of one user share one budget, under a burst", async (t) => {
  const { app, lines } = await serve(t, { API_RATE_LIMIT: "5", API_RATE_WINDOW_SECONDS: "60" });
  const ada = await app.signUp("Ada");
  const tokens = [ada.token];
  for (let i = 0; i < 3; i++) {
    const session = await app.request("POST", "/sessions", { json: { email: ada.email, password: PASSWORD } });
    t.is(session.status, 201);
    tokens.push(session.body.token);
  }
  const answers = await burst(16, (i) => app.request("GET", `/users/${ada.id}`, { token: tokens[i % tokens.length]! }));
  t.is(count(answers, 200), 5, "the user's 5 requests, whichever tokens carried them");
  t.is(count(answers, 429), 11);
  for (const res of answers) t.is(res.headers.get("ratelimit-policy"), '"api";q=5;w=60');
  const limited = answers.find((r) => r.status === 429)!;
  assertProblem(t, limited, 429);
  t.is(limited.body.type, "/problems/rate-limited");
  const retryAfter = Number(limited.headers.get("retry-after"));
  t.true(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  t.deepEqual(parseState(limited.headers.get("ratelimit")), { name: "api", r: 0, t: retryAfter });
  t.deepEqual(
    answers
      .filter((r) => r.status === 200)
      .map((r) => parseState(r.headers.get("ratelimit")).r)
      .sort(),
    [0, 1, 2, 3, 4],
  );

  // Another user has a budget of their own; a fresh token does not buy Ada more.
  const bob = await app.signUp("Bob");
  t.is((await app.request("GET", `/users/${bob.id}`, { token: bob.token })).status, 200);
  const more = await app.request("POST", "/sessions", { json: { email: ada.email, password: PASSWORD } });
  assertProblem(t, await app.request("GET", `/users/${ada.id}`, { token: more.body.token }), 429);
  assertNoSecrets(t, lines, [PASSWORD, ...tokens, more.body.token, bob.token]);
});

test.serial(
  "requests without a valid bearer token are limited per client address; invalid tokens count there, probes never do",
  async (t) => {
    const { app, lines } = await serve(t, { ANONYMOUS_RATE_LIMIT: "10", ANONYMOUS_RATE_WINDOW_SECONDS: "60" });
    const ada = await app.signUp("Ada"); // two anonymous requests (sign-up, login)
    const forged = Array.from({ length: 30 }, () => randomBytes(32).toString("base64url"));
    const answers = await burst(30, (i) => app.request("GET", "/users", { token: forged[i]! }));
    t.is(count(answers, 401), 8, "the 8 requests left of the address's 10 are evaluated (and refused as 401)");
    t.is(count(answers, 429), 22);
    const limited = answers.find((r) => r.status === 429)!;
    t.is(limited.headers.get("ratelimit-policy"), '"anonymous";q=10;w=60');
    t.regex(limited.body.detail, /invalid bearer token/);
    // Without a token: the same budget, spent.
    const anonymous = await app.request("GET", "/");
    assertProblem(t, anonymous, 429);
    t.regex(anonymous.body.detail, /without a bearer token/);
    assertProblem(
      t,
      await app.request("POST", "/users", { json: { name: "Eve", email: "eve@example.com", password: PASSWORD } }),
      429,
    );
    // A valid token is the user's budget, not the address's; probes are never limited.
    t.is((await app.request("GET", `/users/${ada.id}`, { token: ada.token })).status, 200);
    const probes = await burst(20, (i) => app.request("GET", ["/health", "/ready", "/metrics"][i % 3]!));
    t.deepEqual([...new Set(probes.map((r) => r.status))], [200]);
    assertNoSecrets(t, lines, [PASSWORD, ada.token, ...forged]);
  },
);

test.serial(
  "60 wrong logins at once for one e-mail (production cost): never more than 5 evaluated, the rest 429, the right password waits too",
  async (t) => {
    // The address may have all its checks in flight at once here (the test servers' queue): the e-mail's limit alone decides.
    const { app, lines } = await serve(t, {
      ...PRODUCTION_COST,
      LOGIN_FAILURES_PER_EMAIL: "5",
      LOGIN_FAILURES_PER_ADDRESS: "1000",
    });
    const ada = await app.signUp("Ada");
    const wrong = { email: ada.email, password: "not the password" };
    const answers = await burst(60, () => app.request("POST", "/sessions", { json: wrong }));
    t.is(count(answers, 401), 5, "exactly the limit was evaluated");
    t.is(count(answers, 429), 55);
    const again = await burst(60, () => app.request("POST", "/sessions", { json: wrong }));
    t.is(count(again, 429), 60, "and nothing more afterwards");
    for (const body of [
      wrong,
      { email: ada.email, password: PASSWORD },
      { email: ada.email.toUpperCase(), password: PASSWORD },
    ]) {
      const res = await app.request("POST", "/sessions", { json: body });
      assertProblem(t, res, 429);
      t.is(res.headers.get("ratelimit-policy"), '"login-email";q=5;w=900');
      const retryAfter = Number(res.headers.get("retry-after"));
      t.true(retryAfter > 800 && retryAfter <= 900, `Retry-After: ${retryAfter}`);
    }
    // Other accounts are untouched.
    const bob = await app.signUp("Bob");
    t.is((await app.request("POST", "/sessions", { json: { email: bob.email, password: PASSWORD } })).status, 201);
    assertNoSecrets(t, lines, [ada.email, bob.email, PASSWORD, "not the password", ada.token, bob.token]);
  },
);

test.serial("failed logins are limited per client address across e-mail addresses, under a burst", async (t) => {
  const { app, lines } = await serve(t, {
    ...PRODUCTION_COST,
    LOGIN_FAILURES_PER_EMAIL: "100",
    LOGIN_FAILURES_PER_ADDRESS: "4",
  });
  const ada = await app.signUp("Ada");
  let evaluated = 0;
  for (let round = 0; round < 10; round++) {
    const answers = await burst(30, (i) =>
      app.request("POST", "/sessions", { json: { email: `nobody-${round}-${i}@example.com`, password: "guess" } }),
    );
    evaluated += count(answers, 401);
    t.is(count(answers, 401) + count(answers, 429), 30);
    if (count(answers, 401) === 0) break;
  }
  t.is(evaluated, 4);
  const res = await app.request("POST", "/sessions", { json: { email: ada.email, password: PASSWORD } });
  assertProblem(t, res, 429);
  t.is(res.headers.get("ratelimit-policy"), '"login-address";q=4;w=900');
  t.regex(res.body.detail, /client address/);
  assertNoSecrets(t, lines, [ada.email, PASSWORD, "guess", ada.token]);
});

test.serial("a successful login clears its e-mail's failures and gives its attempt back", async (t) => {
  const { app } = await serve(t, {
    ...PRODUCTION_COST,
    LOGIN_FAILURES_PER_EMAIL: "3",
    LOGIN_FAILURES_PER_ADDRESS: "3",
  });
  const ada = await app.signUp("Ada"); // one successful login already
  const wrong = { email: ada.email, password: "not the password" };
  const right = { email: ada.email, password: PASSWORD };
  for (let i = 0; i < 2; i++) t.is((await app.request("POST", "/sessions", { json: wrong })).status, 401);
  // Successes never use up the address's failures (not an attack: one after the other).
  for (let i = 0; i < 6; i++) t.is((await app.request("POST", "/sessions", { json: right })).status, 201);
  // The e-mail's failures were cleared; the address's two stay (3 allowed): one more is evaluated.
  t.is((await app.request("POST", "/sessions", { json: wrong })).status, 401);
  assertProblem(t, await app.request("POST", "/sessions", { json: wrong }), 429);
});

test.serial("sign-ups: 30 at once from one address with a limit of 20 create 20 accounts, never more", async (t) => {
  const { app, lines } = await serve(t, { SIGNUPS_PER_ADDRESS: "20", SIGNUP_WINDOW_SECONDS: "3600" });
  const prefix = randomBytes(4).toString("hex");
  const answers = await burst(30, (i) =>
    app.request("POST", "/users", {
      json: { name: "Bot", email: `bot-${prefix}-${i}@example.com`, password: PASSWORD },
    }),
  );
  t.is(count(answers, 201), 20);
  t.is(count(answers, 429), 10);
  const limited = answers.find((r) => r.status === 429)!;
  t.is(limited.headers.get("ratelimit-policy"), '"signup";q=20;w=3600');
  t.regex(limited.body.detail, /sign-ups/);
  const [{ n }] = (await app.deps.db("users").where("email", "like", `bot-${prefix}-%`).count({ n: "*" })) as [
    { n: number },
  ];
  t.is(Number(n), 20);
  assertNoSecrets(t, lines, [PASSWORD, `bot-${prefix}`]);
});

test.serial(
  "a flood of logins from one address (production cost) degrades to 429/503 for it while another address logs in",
  async (t) => {
    const { app, lines } = await serve(t, {
      ...PRODUCTION_COST,
      ...PRODUCTION_QUEUE,
      TRUST_PROXY: "1",
      LOGIN_FAILURES_PER_EMAIL: "1000",
      LOGIN_FAILURES_PER_ADDRESS: "1000",
    });
    const ada = await app.signUp("Ada");
    const flooder = { "x-forwarded-for": "203.0.113.66" };
    const flood = burst(80, (i) =>
      app.request("POST", "/sessions", {
        json: { email: `nobody-${i}@example.com`, password: "guess" },
        headers: flooder,
      }),
    );
    const victim = await app.request("POST", "/sessions", {
      json: { email: ada.email, password: PASSWORD },
      headers: { "x-forwarded-for": "198.51.100.7" },
    });
    const answers = await flood;
    t.is(victim.status, 201, "another client's login is answered during the flood");
    t.is(count(answers, 401) + count(answers, 429) + count(answers, 503), 80);
    t.true(
      count(answers, 401) <= 80 - 60,
      `${count(answers, 401)} of the flood's logins were evaluated; the rest were refused at once`,
    );
    const refused = answers.find((r) => r.status === 429)!;
    t.truthy(refused.headers.get("retry-after"));
    t.regex(refused.body.detail, /password checks from this client address/);
    assertNoSecrets(t, lines, [ada.email, PASSWORD, "guess", victim.body.token, ada.token]);
  },
);

test.serial("X-Forwarded-For is ignored without TRUST_PROXY: spoofed addresses share the peer's limit", async (t) => {
  const { app } = await serve(t, {
    ...PRODUCTION_COST,
    LOGIN_FAILURES_PER_EMAIL: "100",
    LOGIN_FAILURES_PER_ADDRESS: "3",
  });
  const answers = await burst(12, (i) =>
    app.request("POST", "/sessions", {
      json: { email: `x${i}@example.com`, password: "guess" },
      headers: { "x-forwarded-for": `198.51.100.${i + 1}` },
    }),
  );
  t.is(count(answers, 401), 3);
  t.is(count(answers, 429), 9);
});

test.serial(
  "with TRUST_PROXY the client address comes from X-Forwarded-For, as hops or as trusted proxy CIDRs",
  async (t) => {
    for (const trust of ["1", "127.0.0.0/8, ::1"]) {
      const { app } = await serve(t, {
        ...PRODUCTION_COST,
        TRUST_PROXY: trust,
        LOGIN_FAILURES_PER_EMAIL: "100",
        LOGIN_FAILURES_PER_ADDRESS: "2",
      });
      const login = (i: number, forwardedFor: string) =>
        app.request("POST", "/sessions", {
          json: { email: `y${i}@example.com`, password: "guess" },
          headers: { "x-forwarded-for": forwardedFor },
        });
      // The client may prepend anything; only the entry the proxy added counts.
      const fromA = await burst(6, (i) => login(i, `10.9.9.${i}, 203.0.113.10`));
      t.is(count(fromA, 401), 2, `TRUST_PROXY=${trust}`);
      t.is(count(fromA, 429), 4);
      const fromB = await login(99, "203.0.113.11");
      t.is(fromB.status, 401, `another client behind the same proxy is still evaluated (TRUST_PROXY=${trust})`);
    }
  },
);

test.serial("RATE_LIMITS=off turns every request and login limit off, with a warning at boot", async (t) => {
  const { app, lines } = await serve(t, {
    ...PRODUCTION_COST,
    RATE_LIMITS: "off",
    API_RATE_LIMIT: "1",
    ANONYMOUS_RATE_LIMIT: "1",
    LOGIN_FAILURES_PER_EMAIL: "1",
    LOGIN_FAILURES_PER_ADDRESS: "1",
    SIGNUPS_PER_ADDRESS: "1",
  });
  const warning = lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .find((l) => /RATE_LIMITS=off/.test(l.msg));
  t.is(warning?.level, 40, "a warning at boot");
  const ada = await app.signUp("Ada");
  await app.signUp("Bob");
  const wrong = await burst(5, () =>
    app.request("POST", "/sessions", { json: { email: ada.email, password: "nope" } }),
  );
  t.deepEqual(
    wrong.map((r) => r.status),
    [401, 401, 401, 401, 401],
  );
  const api = await burst(5, () => app.request("GET", `/users/${ada.id}`, { token: ada.token }));
  t.deepEqual(
    api.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  t.is(api[0]!.headers.get("ratelimit"), null);
});
