/**
 * The operations page's script (bundled with `phoenix` and uPlot by ../assets.ts, served as
 * /dashboard/app.js). It logs an operator in through the API (POST /sessions), keeps the tokens
 * in this closure only (no storage, no cookie), joins `admin:dashboard` with the official phoenix
 * client and draws what arrives: the `history` pushed on join, then every node's `snapshot`.
 * A refused join (not an operator) logs the session out again and shows nothing but the refusal.
 */
import { Socket, type Channel } from "phoenix";
import type { DashboardHistory, NodeSnapshot } from "../snapshot.ts";
import { lineChart, type Columns, type LineChart } from "./charts.ts";
import { createModel, type Figures, type Model, type Scope } from "./model.ts";

const HISTORY_SLOTS = 300;
const API_ACCEPT = "application/vnd.app.v2+json";

const socketUrl = document.querySelector<HTMLMetaElement>('meta[name="hypercast-socket"]')!.content;
const loginForm = element<HTMLFormElement>("#login");
const loginError = element<HTMLElement>("#login-error");
const dashboard = element<HTMLElement>("#dashboard");
const status = element<HTMLElement>("#status");
const scopeLabel = element<HTMLElement>("#scope-label");
const scopeSelect = element<HTMLSelectElement>("#scope");
const logoutButton = element<HTMLButtonElement>("#logout");

let session: { token: string; socketToken: string } | undefined;
let socket: Socket | undefined;
let model: Model = createModel(HISTORY_SLOTS);
let scope: Scope = "cluster";
let pending = false;
const charts = new Map<string, LineChart>();

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(loginForm);
  void logIn(String(data.get("email") ?? ""), String(data.get("password") ?? ""));
});
logoutButton.addEventListener("click", () => void logOut("signed out"));
scopeSelect.addEventListener("change", () => {
  scope = scopeSelect.value;
  render();
});
window.addEventListener("resize", () => {
  for (const chart of charts.values()) chart.resize();
});

async function logIn(email: string, password: string): Promise<void> {
  loginError.textContent = "";
  setStatus("signing-in", "signing in…");
  const res = await fetch("/sessions", {
    method: "POST",
    headers: { "content-type": "application/json", accept: API_ACCEPT },
    body: JSON.stringify({ email, password }),
    credentials: "omit",
  }).catch(() => undefined);
  if (res === undefined || res.status !== 201) {
    const problem =
      res === undefined ? undefined : ((await res.json().catch(() => undefined)) as { detail?: string } | undefined);
    loginError.textContent =
      res === undefined ? "The server cannot be reached." : (problem?.detail ?? `Log-in failed (${res.status}).`);
    setStatus("signed-out", "signed out");
    return;
  }
  const body = (await res.json()) as { token: string; socket_token: string };
  session = { token: body.token, socketToken: body.socket_token };
  loginForm.reset(); // the password does not stay in the page
  connect(session.socketToken);
}

function connect(socketToken: string): void {
  socket = new Socket(socketUrl, { params: { token: socketToken } });
  // The client reconnects by itself; say so meanwhile instead of showing stale figures as live.
  socket.onError(() => setStatus("error", "socket unreachable; reconnecting"));
  socket.onOpen(() => {
    if (status.dataset["state"] === "error") setStatus("live", "live");
  });
  socket.connect();
  const channel: Channel = socket.channel("admin:dashboard", {});
  channel.on("history", (history: DashboardHistory) => {
    model = createModel(HISTORY_SLOTS);
    model.addHistory(history);
    schedule();
  });
  channel.on("snapshot", (snapshot: NodeSnapshot) => {
    model.add(snapshot);
    schedule();
  });
  channel
    .join()
    .receive("ok", () => {
      loginForm.hidden = true;
      dashboard.hidden = false;
      logoutButton.hidden = false;
      scopeLabel.hidden = false;
      setStatus("live", "live");
    })
    .receive("error", (response: { reason?: string }) => {
      void logOut("refused");
      loginError.textContent =
        response.reason === "unauthorized"
          ? "This account is not an operator: the dashboard is for the addresses in ADMIN_EMAILS."
          : `Refused: ${response.reason ?? "unknown reason"}.`;
    })
    .receive("timeout", () => setStatus("error", "no answer from the socket; retrying"));
}

async function logOut(state: "signed out" | "refused"): Promise<void> {
  socket?.disconnect();
  socket = undefined;
  const token = session?.token;
  session = undefined;
  model = createModel(HISTORY_SLOTS);
  dashboard.hidden = true;
  logoutButton.hidden = true;
  scopeLabel.hidden = true;
  loginForm.hidden = false;
  setStatus(state === "refused" ? "refused" : "signed-out", state);
  if (token !== undefined)
    await fetch("/sessions", {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}`, accept: API_ACCEPT },
    }).catch(() => undefined);
}

function setStatus(state: string, text: string): void {
  status.dataset["state"] = state;
  status.textContent = text;
}

/** At most one render per animation frame, however many nodes report. */
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function render(): void {
  if (session === undefined) return;
  syncScopes();
  const now = model.latest(scope);
  if (now !== undefined) renderFigures(now);
  renderCharts();
  renderTables();
}

function syncScopes(): void {
  const wanted = ["cluster", ...model.nodes()];
  const have = [...scopeSelect.options].map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return;
  scopeSelect.replaceChildren(
    ...wanted.map(
      (value) =>
        new Option(
          value === "cluster" ? `Cluster (${wanted.length - 1} nodes)` : shortNode(value),
          value,
          false,
          value === scope,
        ),
    ),
  );
  if (!wanted.includes(scope)) scope = "cluster";
}

function renderFigures(f: Figures): void {
  const newest = model.newest().filter((s) => scope === "cluster" || s.node === scope);
  const redis = newest.map((s) => s.redis);
  const text: Record<string, string> = {
    ...Object.fromEntries(
      Object.entries(f).map(([key, value]) => [key, typeof value === "number" ? format(value) : ""]),
    ),
    rss_bytes: mib(f.rss_bytes),
    nodes: String(model.nodes().length),
    redis: redisText(redis),
  };
  for (const el of document.querySelectorAll<HTMLElement>("[data-metric]")) {
    const value = text[el.dataset["metric"]!];
    if (value !== undefined && el.textContent !== value) el.textContent = value;
  }
}

function renderCharts(): void {
  const versions = model.versions();
  const column = (pick: (f: Figures) => number) => model.series(scope, pick);
  const [xs] = column((f) => f.sockets);
  const many = (picks: ((f: Figures) => number)[]): Columns => [xs, ...picks.map((pick) => column(pick)[1])];
  draw(
    "http",
    versions.map((v) => (v === "none" ? "no version" : `v${v}`)),
    many(versions.map((v) => (f: Figures) => f.http_by_version[v] ?? 0)),
  );
  draw("latency", ["p50", "p99"], many([(f) => f.http_p50_ms, (f) => f.http_p99_ms]));
  draw("errors", ["4xx", "5xx"], many([(f) => f.http_4xx_per_s, (f) => f.http_5xx_per_s]));
  draw("sockets", ["open"], many([(f) => f.sockets]));
  draw(
    "realtime",
    ["joins", "messages in", "deliveries"],
    many([(f) => f.joins_per_s, (f) => f.messages_in_per_s, (f) => f.deliveries_per_s]),
  );
  draw(
    "db",
    ["in use", "waiting", "query p99 ms"],
    many([(f) => f.db_in_use, (f) => f.db_waiting, (f) => f.db_p99_ms]),
  );
  for (const [name, pick] of [
    ["cpu", (s: NodeSnapshot) => s.process.cpu_percent],
    ["memory", (s: NodeSnapshot) => s.process.rss_bytes / 1048576],
    ["loop", (s: NodeSnapshot) => s.process.loop_p99_ms],
  ] as const) {
    const { nodes, data } = model.perNode(scope, pick);
    draw(name, nodes.map(shortNode), data);
  }
}

function draw(name: string, labels: readonly string[], data: Columns): void {
  let chart = charts.get(name);
  if (chart === undefined) charts.set(name, (chart = lineChart(element<HTMLElement>(`[data-chart="${name}"]`))));
  chart.draw(labels, data);
}

function renderTables(): void {
  const callers = model.callers(scope, 10);
  fill(
    "#callers",
    callers.map((c) => [`v${c.version}`, String(c.user_id), String(c.requests)]),
    "No authenticated calls to a deprecated version in the window.",
  );
  const windows = model.newest().flatMap((s) => s.callers.map((c) => c.window_s));
  element<HTMLElement>("#callers-note").textContent =
    windows.length === 0
      ? ""
      : `Requests over the last ${Math.max(...windows) / 60} minutes (estimates that may over-count, never under-count).`;
  fill(
    "#topics",
    model.topics(scope, 10).map((t) => [t.topic, String(t.subscribers), String(t.presences), format(t.rate)]),
    "No joined topics.",
  );
  const now = Date.now();
  fill(
    "#nodes",
    model
      .newest()
      .map((s) => [
        shortNode(s.node),
        s.version,
        s.node_version,
        duration(s.uptime_s),
        mib(s.process.rss_bytes),
        mib(s.process.heap_used_bytes),
        format(s.process.cpu_percent),
        format(s.process.loop_p99_ms),
        redisText([s.redis]),
        format(s.build_ms),
        `${Math.max(0, Math.round((now - s.at) / 1000))} s ago`,
      ]),
    "No node has reported yet.",
  );
}

/** Replaces a table's rows; text only (textContent), so nothing received is ever parsed as HTML. */
function fill(table: string, rows: string[][], empty: string): void {
  const body = element<HTMLTableElement>(table).tBodies[0]!;
  const cells = rows.length === 0 ? [[empty]] : rows;
  body.replaceChildren(
    ...cells.map((row) => {
      const tr = document.createElement("tr");
      for (const value of row) {
        const td = document.createElement("td");
        td.textContent = value;
        if (rows.length === 0) td.colSpan = 12;
        tr.append(td);
      }
      return tr;
    }),
  );
}

/** `off (single node)`, `down`, or `ok` with the slowest PING round trip of the nodes shown (`ok, 0.31 ms`). */
function redisText(redis: readonly NodeSnapshot["redis"][]): string {
  if (redis.every((r) => r.status === "off")) return "off (single node)";
  if (redis.some((r) => r.status === "down")) return "down";
  const pings = redis.flatMap((r) => (r.ping_ms === null ? [] : [r.ping_ms]));
  return pings.length === 0 ? "ok" : `ok, ${format(Math.max(...pings))} ms`;
}

function element<T extends Element>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`the page lacks ${selector}`);
  return found;
}

/** `web-1:4242:1767225600000:9f3a` → `web-1:4242`. */
function shortNode(id: string): string {
  return id.split(":").slice(0, 2).join(":");
}

function format(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MiB`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
