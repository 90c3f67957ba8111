/**
 * The command line of `hypercast-load` (README, Load testing with hypercast-load), parsed and checked once: every mistake is
 * reported with what was expected. Pure apart from reading `availableParallelism()` for the default
 * number of workers.
 *
 *     parseOptions(["fanout", "--url", "ws://127.0.0.1:4001/socket", "--topic", "room:1", "--param", "token=…"])
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import type { ClientKind } from "./connection.ts";
import { SCENARIOS, type Scenario } from "./types.ts";

export interface LoadOptions {
  scenario: Scenario;
  /** Socket endpoint URLs as given (ws://host:port/socket); see socketUrls() for the full URLs. */
  urls: string[];
  topic: string | undefined;
  params: Record<string, string>;
  joinPayload: string;
  subscribers: number;
  publishers: number;
  rate: number;
  event: string;
  payload: string;
  durationS: number;
  ramp: number;
  workers: number;
  inFlight: number;
  out: string | undefined;
  report: string | undefined;
  allowRemote: boolean;
  client: ClientKind;
  api: string | undefined;
  email: string | undefined;
  password: string | undefined;
  metrics: string | undefined;
  drainS: number;
  connectTimeoutS: number;
  maxSeconds: number;
  maxClientCpu: number;
  maxLagMs: number;
  churners: number;
  churnRate: number;
  quiet: boolean;
}

export const USAGE = `usage: hypercast-load <${SCENARIOS.join("|")}> [options]

  --url ws://HOST:PORT/socket   the socket endpoint (repeat to spread sockets over nodes; publishers use the first)
  --topic T                     the topic to join (with --api and no --topic, a fresh public room is created)
  --param k=v                   socket params, repeatable (e.g. token=…); vsn=2.0.0 is always sent
  --join-payload JSON           join payload (default {"presence":false}, or {} for presence)
  --subscribers N               sockets that join and count deliveries (default 100)
  --publishers P                sockets that push on schedule (default 1)
  --rate R                      messages per second, all publishers together, open loop (default 100)
  --event E                     the pushed event (default message:new)
  --payload JSON                payload; $MARK becomes the delivery marker (default {"body":"$MARK"})
  --duration S                  seconds of publishing, or of holding (default 10)
  --ramp N                      connections per second (default 1000; 0 = as fast as possible)
  --workers K                   client processes (default: one per core, ${availableParallelism()} here)
  --out FILE                    write the JSON result (valid or not)
  --report FILE                 write a self-contained HTML report with charts
  --metrics URL                 scrape the server's Prometheus endpoint every second
  --api URL --email E --password P   mint a socket token on a Hypercast API (signs up if needed)
  --client raw|ws               the WebSocket client (default raw: the cheaper per frame here)
  --churners N --churn-rate R   churn: sockets that leave and rejoin, R leaves per second (default 10% of subscribers, 10/s)
  --drain S                     after publishing, wait up to S seconds without progress for late deliveries and replies (default 5)
  --max-client-cpu F            a client process busier than F of a core for 2 s makes the run invalid (default 0.9)
  --max-lag-ms MS               client event-loop lag p99 over MS makes the run invalid (default 100)
  --max-seconds S               hard bound of the whole run (default: computed from the others)
  --allow-remote                allow a target that is not on loopback (only servers you run)
  --quiet                       no progress lines`;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

function number(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new Error(`--${name} expects a number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

function json(name: string, value: string): string {
  try {
    JSON.parse(value);
  } catch (error) {
    throw new Error(`--${name} expects JSON, got ${value} (${(error as Error).message})`);
  }
  return value;
}

export function isLoopback(url: string): boolean {
  return LOOPBACK.test(new URL(url).hostname);
}

export function parseOptions(argv: string[]): LoadOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string", multiple: true },
      topic: { type: "string" },
      param: { type: "string", multiple: true },
      "join-payload": { type: "string" },
      subscribers: { type: "string" },
      publishers: { type: "string" },
      rate: { type: "string" },
      event: { type: "string" },
      payload: { type: "string" },
      duration: { type: "string" },
      ramp: { type: "string" },
      workers: { type: "string" },
      "in-flight": { type: "string" },
      out: { type: "string" },
      report: { type: "string" },
      "allow-remote": { type: "boolean" },
      client: { type: "string" },
      api: { type: "string" },
      email: { type: "string" },
      password: { type: "string" },
      metrics: { type: "string" },
      drain: { type: "string" },
      "connect-timeout": { type: "string" },
      "max-seconds": { type: "string" },
      "max-client-cpu": { type: "string" },
      "max-lag-ms": { type: "string" },
      churners: { type: "string" },
      "churn-rate": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) throw new Error(USAGE);
  const scenario = positionals[0] as Scenario | undefined;
  if (scenario === undefined || !SCENARIOS.includes(scenario))
    throw new Error(
      `expected a scenario (${SCENARIOS.join(", ")}), got ${JSON.stringify(positionals[0] ?? null)}\n\n${USAGE}`,
    );
  const urls = (values.url ?? ["ws://127.0.0.1:4001/socket"]).map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`--url expects ws://HOST:PORT/socket, got ${JSON.stringify(u)}`);
    }
    if (url.protocol !== "ws:") throw new Error(`--url must be a ws:// URL (TLS is not supported), got ${u}`);
    // localhost may resolve to ::1, where 127.0.0.x source addresses cannot be bound.
    if (url.hostname === "localhost") url.hostname = "127.0.0.1";
    return url.toString().replace(/\/+$/, "");
  });
  const params: Record<string, string> = {};
  for (const p of values.param ?? []) {
    const eq = p.indexOf("=");
    if (eq < 1) throw new Error(`--param expects k=v, got ${JSON.stringify(p)}`);
    params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const client = values.client ?? "raw";
  if (client !== "raw" && client !== "ws") throw new Error(`--client expects raw or ws, got ${client}`);
  const subscribers = Math.floor(number("subscribers", values.subscribers, 100));
  const publishers = Math.floor(
    number("publishers", values.publishers, scenario === "fanout" || scenario === "churn" ? 1 : 0),
  );
  const rate = number("rate", values.rate, 100);
  const durationS = number("duration", values.duration, 10);
  const ramp = number("ramp", values.ramp, 1000);
  const drainS = number("drain", values.drain, 5);
  const workers = Math.max(1, Math.floor(number("workers", values.workers, availableParallelism(), 1)));
  const churners = Math.floor(
    number("churners", values.churners, scenario === "churn" ? Math.max(1, Math.round(subscribers / 10)) : 0),
  );
  const total = subscribers + publishers + churners;
  const rampSeconds = ramp > 0 ? total / ramp : total / 500;
  const options: LoadOptions = {
    scenario,
    urls,
    topic: values.topic,
    params,
    joinPayload: json(
      "join-payload",
      values["join-payload"] ?? (scenario === "presence" ? "{}" : '{"presence":false}'),
    ),
    subscribers,
    publishers,
    rate,
    event: values.event ?? "message:new",
    payload: values.payload ?? '{"body":"$MARK"}',
    durationS,
    ramp,
    workers,
    inFlight: Math.floor(number("in-flight", values["in-flight"], 256, 1)),
    out: values.out,
    report: values.report,
    allowRemote: values["allow-remote"] ?? false,
    client,
    api: values.api,
    email: values.email,
    password: values.password,
    metrics: values.metrics,
    drainS,
    connectTimeoutS: number("connect-timeout", values["connect-timeout"], 10, 1),
    maxSeconds: number("max-seconds", values["max-seconds"], Math.ceil(rampSeconds + durationS + drainS + 60), 1),
    maxClientCpu: number("max-client-cpu", values["max-client-cpu"], 0.9),
    maxLagMs: number("max-lag-ms", values["max-lag-ms"], 100),
    churners,
    churnRate: number("churn-rate", values["churn-rate"], 10),
    quiet: values.quiet ?? false,
  };
  if ((scenario === "fanout" || scenario === "churn") && (publishers < 1 || rate <= 0))
    throw new Error(`${scenario} needs --publishers ≥ 1 and --rate > 0`);
  if (subscribers + churners < 1) throw new Error("--subscribers must be at least 1");
  // A presence storm counts the tracked subscribers' views; other sockets joining would change what
  // "complete" means.
  if (scenario === "presence" && (publishers > 0 || churners > 0))
    throw new Error(
      "presence tracks --subscribers sockets only: --publishers and --churners do not apply (run churn or fanout for those)",
    );
  if (
    (options.api === undefined) !== (options.email === undefined) ||
    (options.email === undefined) !== (options.password === undefined)
  ) {
    throw new Error("--api, --email and --password go together");
  }
  if (options.topic === undefined && options.api === undefined)
    throw new Error("--topic is required (or --api, which creates a room)");
  // A load generator must never be pointed at someone else's server by accident.
  if (!options.allowRemote) {
    for (const u of [...urls, options.api, options.metrics]) {
      if (u !== undefined && !isLoopback(u))
        throw new Error(`${u} is not on loopback; pass --allow-remote to load-test a server of your own elsewhere`);
    }
  }
  return options;
}

/** The full socket URL: /websocket appended when missing, vsn=2.0.0 and the params in the query. */
export function socketUrl(base: string, params: Record<string, string>): string {
  const url = new URL(base);
  if (!url.pathname.endsWith("/websocket")) url.pathname = `${url.pathname.replace(/\/+$/, "")}/websocket`;
  url.searchParams.set("vsn", "2.0.0");
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}
