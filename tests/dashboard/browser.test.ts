/**
 * The operations page in a real browser: headless Chromium (Debian's) against a real server,
 * logging in through the page's own form, following the cluster over the bundled phoenix client.
 * Set DASHBOARD_SCREENSHOT=path to also save a screenshot of the live page (docs/dashboard.png).
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { Socket } from "phoenix";
import type { Page } from "playwright-core";
import WebSocket from "ws";
import { browserMissing, launchChromium, type Chromium } from "../helpers/browser.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

const PASSWORD = "correct horse battery";
const OPERATOR = `ops-${randomBytes(4).toString("hex")}@example.com`;
const WAIT_MS = 20_000;

let server: TestServer;
let browser: Chromium;
const missing = browserMissing();
const browserTest = missing === undefined ? test.serial : test.skip;

test.before(async () => {
  if (missing !== undefined) return;
  server = await startTestServer({
    ADMIN_EMAILS: `someone@example.com, ${OPERATOR.toUpperCase()}`,
    DASHBOARD_INTERVAL_MS: "200",
  });
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
  await server?.stop();
});

async function register(email: string): Promise<void> {
  const res = await server.request("POST", "/users", { json: { name: "Dash", email, password: PASSWORD } });
  if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${res.text}`);
}

/** Opens the page, collecting console errors and CSP violations (none may happen). */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || /Content[- ]Security[- ]Policy/i.test(message.text()))
      problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  const res = await page.goto(`${server.url}/dashboard`);
  if (res?.status() !== 200) throw new Error(`GET /dashboard answered ${res?.status()}`);
  return { page, problems };
}

async function logIn(page: Page, email: string): Promise<void> {
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('button[type="submit"]');
}

async function metric(page: Page, name: string): Promise<string> {
  return (await page.textContent(`[data-metric="${name}"]`)) ?? "";
}

/** The page's globals that the functions below read (tests are compiled without the DOM library). */
type PageGlobals = { document: { querySelector(selector: string): { textContent: string | null } | null } };

/** Waits until the figure's text matches (a function run in the page: the page's CSP allows no string eval). */
async function waitForMetric(page: Page, name: string, pattern: RegExp): Promise<void> {
  await page.waitForFunction(
    ([selector, source]) =>
      new RegExp(source).test(
        (globalThis as unknown as PageGlobals).document.querySelector(selector)?.textContent ?? "",
      ),
    [`[data-metric="${name}"]`, pattern.source] as const,
    { timeout: WAIT_MS },
  );
}

type PageTables = { document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> } };

interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
}

/**
 * Waits until the chart's canvas holds pixels of the series colour (within antialiasing), and
 * returns how many: proof that uPlot drew a line of data, not only an empty canvas.
 */
async function seriesPixels(page: Page, chart: string, rgb: readonly [number, number, number]): Promise<number> {
  const count = await page.waitForFunction(
    ([selector, [r, g, b]]) => {
      const canvas = (
        globalThis as unknown as { document: { querySelector(s: string): PageCanvas | null } }
      ).document.querySelector(selector);
      if (canvas === null || canvas.width === 0) return false;
      const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4)
        if (
          data[i + 3]! > 200 &&
          Math.abs(data[i]! - r) < 24 &&
          Math.abs(data[i + 1]! - g) < 24 &&
          Math.abs(data[i + 2]! - b) < 24
        )
          n++;
      return n >= 20 ? n : false;
    },
    [`[data-chart="${chart}"] canvas`, rgb] as const,
    { timeout: WAIT_MS },
  );
  return (await count.jsonValue()) as number;
}

async function openSocket(token: string): Promise<Socket> {
  const socket = new Socket(server.server.socketUrl, {
    transport: WebSocket,
    params: { token },
  } as ConstructorParameters<typeof Socket>[1]);
  await new Promise<void>((resolve, reject) => {
    socket.onOpen(() => resolve());
    socket.onError(() => reject(new Error("test socket failed to open")));
    socket.connect();
  });
  return socket;
}

const browserTitle = missing === undefined ? "" : ` (skipped: ${missing})`;

browserTest(
  `a non-operator who logs in is refused: no figures shown, the session is revoked again${browserTitle}`,
  async (t) => {
    const email = `user-${randomBytes(4).toString("hex")}@example.com`;
    await register(email);
    const { page, problems } = await openPage();
    const logout = page.waitForResponse(
      (r) => r.request().method() === "DELETE" && new URL(r.url()).pathname === "/sessions",
      { timeout: WAIT_MS },
    );
    await logIn(page, email);
    await page.waitForSelector('#status[data-state="refused"]', { timeout: WAIT_MS });
    t.is((await logout).status(), 204, "the page revoked the session it had opened");
    t.true(await page.isHidden("#dashboard"));
    t.false(await page.isHidden("#login"));
    t.regex((await page.textContent("#login-error")) ?? "", /not an operator/);
    t.is(await metric(page, "sockets"), "–", "no figure was ever filled in");
    t.deepEqual(
      problems.filter((p) => !/401|403/.test(p)),
      [],
    );
    await page.close();
  },
);

browserTest(
  `an operator logs in, the charts draw their data, [data-metric=sockets] follows sockets joining and leaving, and a v1 caller is listed${browserTitle}`,
  async (t) => {
    await register(OPERATOR);
    const { page, problems } = await openPage();
    await logIn(page, OPERATOR);
    await page.waitForSelector('#status[data-state="live"]', { timeout: WAIT_MS });
    t.false(await page.isHidden("#dashboard"));
    t.true(await page.isHidden("#login"), "the log-in form is gone");
    // The tokens live in the page's memory only: no cookie, nothing stored.
    t.deepEqual(await page.context().cookies(), []);
    t.deepEqual(
      await page.evaluate(() => {
        const g = globalThis as unknown as { localStorage: { length: number }; sessionStorage: { length: number } };
        return [g.localStorage.length, g.sessionStorage.length];
      }),
      [0, 0],
    );
    // uPlot draws into a canvas in each chart box once data arrives.
    for (const chart of ["http", "sockets", "realtime", "cpu"]) {
      await page.waitForSelector(`[data-chart="${chart}"] canvas`, { timeout: WAIT_MS });
    }
    // And it drew the data: the sockets chart's canvas holds a line in its series colour (charts.ts COLORS[0]).
    const drawn = await seriesPixels(page, "sockets", [0x2f, 0x6f, 0xdf]);
    t.true(drawn >= 20, `${drawn} pixels of the sockets series`);
    // The history pushed on join may end before the page's own socket opened; the first live snapshot counts it.
    await waitForMetric(page, "sockets", /^[1-9]\d*$/);
    const before = Number(await metric(page, "sockets"));

    const user = await server.signUp("watcher");
    const sockets = await Promise.all([1, 2, 3].map(() => openSocket(user.socketToken)));
    await waitForMetric(page, "sockets", new RegExp(`^${before + 3}$`));
    for (const socket of sockets) socket.disconnect();
    await waitForMetric(page, "sockets", new RegExp(`^${before}$`));

    // The figures the contract names are all filled in; HTTP traffic shows up by version.
    for (const name of ["http_rps", "joins_per_s", "deliveries_per_s", "nodes", "redis"])
      t.not(await metric(page, name), "–", name);
    t.is(await metric(page, "nodes"), "1");

    // A v1 caller with a bearer token shows up in the table of deprecated-version callers.
    const legacy = await server.signUp("legacy");
    t.is((await server.request("GET", `/v1/users/${legacy.id}`, { token: legacy.token })).status, 200);
    await page.waitForFunction(
      (row) =>
        [...(globalThis as unknown as PageTables).document.querySelectorAll("#callers tbody tr")].some(
          (tr) => tr.textContent === row,
        ),
      `v1${legacy.id}1`,
      { timeout: WAIT_MS },
    );
    t.pass("the v1 caller is listed: version, user id, one request");
    t.is(await page.locator("#nodes tbody tr").count(), 1);
    t.deepEqual(problems, [], "no console error and no CSP violation");

    const screenshot = process.env["DASHBOARD_SCREENSHOT"];
    if (screenshot !== undefined) await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
  },
);
