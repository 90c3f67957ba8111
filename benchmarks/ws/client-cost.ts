/**
 * Which WebSocket client should hypercast-load use? Runs the same fan-out against the raw uWS
 * reference server (pinned to core 0) with `--client raw` (lib/load/rfc6455.ts) and `--client ws`
 * (`ws` without permessage-deflate or UTF-8 validation), alternating, and prints the median client
 * CPU per received frame of each. The cheaper one is the default.
 *
 *     npx tsx benchmarks/ws/client-cost.ts [--subscribers 1000] [--rate 100] [--duration 5] [--rounds 3]
 */
import { commandLine, positiveInt } from "../lib/options.ts";
import { machineLine, median, pinning, runLoadTool, startPinned } from "./rounds.ts";

const { values, check } = commandLine(
  "client-cost",
  "npx tsx benchmarks/ws/client-cost.ts [--subscribers N] [--rate MSG_PER_S] [--duration S] [--rounds N]",
  {
    subscribers: { type: "string" },
    rate: { type: "string" },
    duration: { type: "string" },
    rounds: { type: "string" },
  },
);
const SUBSCRIBERS = String(check(() => positiveInt("subscribers", values.subscribers, 1000)));
const RATE = String(check(() => positiveInt("rate", values.rate, 100)));
const DURATION = String(check(() => positiveInt("duration", values.duration, 5)));
const ROUNDS = check(() => positiveInt("rounds", values.rounds, 3));
const pins = pinning();
const server = await startPinned(pins.server, "benchmarks/ws/raw-server.ts");
const costs: Record<string, number[]> = { raw: [], ws: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const client of r % 2 === 0 ? ["raw", "ws"] : ["ws", "raw"]) {
      const { result } = await runLoadTool(pins, [
        "fanout",
        "--url",
        `ws://127.0.0.1:${server.port}/socket`,
        "--topic",
        "room:1",
        "--subscribers",
        SUBSCRIBERS,
        "--rate",
        RATE,
        "--duration",
        DURATION,
        "--workers",
        "1",
        "--client",
        client,
      ]);
      costs[client]!.push(result.client.cpu_us_per_frame);
      console.error(
        `round ${r + 1} ${client}: ${result.client.cpu_us_per_frame.toFixed(2)} µs CPU per frame over ${result.client.frames.toLocaleString("en-US")} frames (${result.valid ? "valid" : "not valid"})`,
      );
    }
  }
} finally {
  await server.stop();
}
console.log(
  `\nclient cost — ${machineLine()}\n${pins.note}; ${SUBSCRIBERS} subscribers × ${RATE} msg/s for ${DURATION} s, 1 worker, ${ROUNDS} rounds`,
);
console.log(
  `median client CPU per frame: raw RFC 6455 ${median(costs["raw"]!).toFixed(2)} µs, ws ${median(costs["ws"]!).toFixed(2)} µs (ws / raw = ${(median(costs["ws"]!) / median(costs["raw"]!)).toFixed(2)}×)`,
);
