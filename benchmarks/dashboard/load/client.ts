/**
 * A load client process: opens its share of sockets (over several 127.0.0.x source addresses),
 * joins the topic as audience with the Phoenix V2 protocol, then counts frames. Lean on purpose:
 * `ws` without permessage-deflate or UTF-8 validation, and no JSON parsing of broadcasts — the
 * send timestamp is read straight out of the frame bytes.
 */
import WebSocket from "ws";
import { BUCKET_MS, BUCKETS, nowMs, type ClientJob, type ClientReport } from "./shared.ts";

const BODY = Buffer.from('"body":"');
const QUOTE = 0x22;
const histogram = new Uint32Array(BUCKETS);
const sockets: WebSocket[] = [];
let frames = 0;
let messages = 0;
let closedByServer = 0;
let lastAt = 0;
let stopping = false;

function send(report: ClientReport): void {
  process.send?.(report);
}

function onFrame(data: Buffer): void {
  frames++;
  const at = data.indexOf(BODY);
  if (at === -1) return;
  const start = at + BODY.length;
  const end = data.indexOf(QUOTE, start);
  const sent = Number(data.toString("latin1", start, end));
  if (!Number.isFinite(sent)) return;
  messages++;
  lastAt = nowMs();
  const bucket = Math.min(BUCKETS - 1, Math.max(0, Math.floor((nowMs() - sent) / BUCKET_MS)));
  histogram[bucket]! += 1;
}

function openOne(job: ClientJob, index: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(job.url, { perMessageDeflate: false, skipUTF8Validation: true, ...(job.addresses.length > 0 ? { localAddress: job.addresses[index % job.addresses.length]! } : {}) });
    let joined = false;
    const timer = setTimeout(() => {
      ws.terminate();
      resolve(false);
    }, 30_000);
    ws.on("open", () => ws.send(JSON.stringify(["1", "1", job.topic, "phx_join", { presence: false }])));
    ws.on("message", (data: Buffer) => {
      if (joined) return onFrame(data);
      if (data.includes('"phx_reply"')) {
        joined = data.includes('"status":"ok"');
        clearTimeout(timer);
        if (joined) sockets.push(ws);
        else ws.terminate();
        resolve(joined);
      }
    });
    ws.on("close", () => {
      if (!stopping && joined) closedByServer++;
    });
    ws.on("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

async function run(job: ClientJob): Promise<void> {
  const startedAt = nowMs();
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < job.sockets) {
      const index = next++;
      if (!(await openOne(job, index))) failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.inFlight, job.sockets) }, worker));
  send({ kind: "joined", joined: sockets.length, failed, startedAt, endedAt: nowMs() });
}

process.on("message", (message: ClientJob | { kind: "report" } | { kind: "stop" }) => {
  if (message.kind === "job") void run(message);
  else if (message.kind === "report") {
    const cpu = process.cpuUsage();
    send({ kind: "counts", frames, messages, histogram: Array.from(histogram), cpuMicros: cpu.user + cpu.system, closedByServer, lastAt });
  } else {
    stopping = true;
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  }
});
// Never outlive the parent.
process.on("disconnect", () => process.exit(0));
