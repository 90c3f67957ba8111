/**
 * The parent's side of `bench:dashboard`'s socket load (kept from the harness `bench:ws` and `bench:cluster` used before hypercast-load): fork lean load
 * clients (./client.ts), give them their share of sockets, open a publisher socket that pushes
 * `message:new` with its send time in the body, and gather the clients' counts and latency
 * histograms until every expected delivery has arrived (or delivery stalls).
 *
 *     const clients = [forkClient(children), forkClient(children)]
 *     const joined = await joinAll(clients, jobs, 60_000)
 *     const publisher = await openPublisher(url, topic)
 *     const firstAt = await publishTimed(publisher, topic, 50, 10)
 *     const counts = await collectCounts(clients, { expected, messages: 50 })
 */
import { fork, type ChildProcess } from "node:child_process";
import WebSocket from "ws";
import { BUCKET_MS, BUCKETS, nowMs, type ClientJob, type ClientReport } from "./shared.ts";

export type Joined = Extract<ClientReport, { kind: "joined" }>;
export type Counts = Extract<ClientReport, { kind: "counts" }>;

/** Forks a TypeScript entry (relative to this file) with tsx; `children` tracks it until it exits. */
export function forkTs(file: string, children: Set<ChildProcess>): ChildProcess {
  const child = fork(new URL(file, import.meta.url), [], { execArgv: ["--import", "tsx", "--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** A load client process (./client.ts). */
export function forkClient(children: Set<ChildProcess>): ChildProcess {
  return forkTs("./client.ts", children);
}

export function nextMessage<T>(child: ChildProcess, accept: (m: T) => boolean, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off("message", on);
      child.off("exit", onExit);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const on = (m: T) => {
      if (!accept(m)) return;
      clearTimeout(timer);
      child.off("message", on);
      child.off("exit", onExit);
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      child.off("message", on);
      reject(new Error(`child exited (${signal ?? code}) while waiting for ${what}`));
    };
    child.on("message", on);
    child.once("exit", onExit);
  });
}

/** Sends each client its job and waits until all have opened and joined their sockets. */
export async function joinAll(clients: ChildProcess[], jobs: ClientJob[], timeoutMs: number): Promise<Joined[]> {
  return (await Promise.all(
    clients.map((c, i) => {
      c.send(jobs[i]!);
      return nextMessage<ClientReport>(c, (m) => m.kind === "joined", timeoutMs, "joins");
    }),
  )) as Joined[];
}

/** Sockets per client when `total` is spread over `clients` as evenly as possible. */
export function share(total: number, clients: number, index: number): number {
  return Math.floor(total / clients) + (index < total % clients ? 1 : 0);
}

/** One more socket, joined to `topic` as audience, that will push the timed messages. */
export async function openPublisher(url: string, topic: string): Promise<WebSocket> {
  const publisher = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    publisher.once("open", () => resolve());
    publisher.once("error", reject);
  });
  publisher.send(JSON.stringify(["p", "p", topic, "phx_join", { presence: false }]));
  const reply = await new Promise<string>((resolve) => publisher.once("message", (data: Buffer) => resolve(data.toString())));
  if (!reply.includes('"status":"ok"')) throw new Error(`the publisher could not join ${topic}: ${reply}`);
  return publisher;
}

/** Pushes `messages` × `message:new` at `rate` per second (0 = all at once); returns when the first was sent. */
export async function publishTimed(publisher: WebSocket, topic: string, messages: number, rate: number): Promise<number> {
  const firstAt = nowMs();
  for (let i = 0; i < messages; i++) {
    if (rate > 0) {
      const wait = firstAt + (i * 1000) / rate - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    publisher.send(JSON.stringify(["p", String(i + 1), topic, "message:new", { body: nowMs().toFixed(3) }]));
  }
  return firstAt;
}

export async function countsOf(clients: ChildProcess[]): Promise<Counts[]> {
  return (await Promise.all(
    clients.map((c) => {
      c.send({ kind: "report" });
      return nextMessage<ClientReport>(c, (m) => m.kind === "counts", 30_000, "counts");
    }),
  )) as Counts[];
}

export interface CollectOptions {
  /** Deliveries expected over all clients (joined sockets × messages). */
  expected: number;
  /** Messages published: a socket closed by the server forgives this many deliveries. */
  messages: number;
  /** Give up this long after the last progress (default 10 s). */
  stallMs?: number;
  /** Give up after this long in any case (default 60 s). */
  maxMs?: number;
}

/** Polls the clients until every expected delivery arrived, delivery stalled, or time ran out. */
export async function collectCounts(clients: ChildProcess[], options: CollectOptions): Promise<Counts[]> {
  const deadline = nowMs() + (options.maxMs ?? 60_000);
  let progressAt = nowMs();
  let last = -1;
  for (;;) {
    const counts = await countsOf(clients);
    const delivered = counts.reduce((a, r) => a + r.messages, 0);
    const lost = counts.reduce((a, r) => a + r.closedByServer, 0);
    if (delivered !== last) progressAt = nowMs();
    last = delivered;
    if (delivered >= options.expected - lost * options.messages || nowMs() > deadline || nowMs() - progressAt > (options.stallMs ?? 10_000)) return counts;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The clients' latency histograms added up. */
export function mergeHistograms(counts: Counts[]): Float64Array {
  const histogram = new Float64Array(BUCKETS);
  for (const r of counts) for (let i = 0; i < BUCKETS; i++) histogram[i]! += r.histogram[i]!;
  return histogram;
}

/** Upper edge of the highest non-empty bucket, in ms (0 when empty). */
export function maxLatency(histogram: ArrayLike<number>): number {
  for (let i = histogram.length - 1; i >= 0; i--) if (histogram[i]! > 0) return (i + 1) * BUCKET_MS;
  return 0;
}

/** Tells the clients to close their sockets and waits for them to exit. */
export async function stopClients(clients: ChildProcess[]): Promise<void> {
  for (const c of clients) if (c.connected) c.send({ kind: "stop" });
  await Promise.all(clients.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once("exit", r)))));
}
