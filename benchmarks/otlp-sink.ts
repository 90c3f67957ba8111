/**
 * A do-nothing OTLP/HTTP receiver for measuring tracing's cost (README "Tracing"): it reads each
 * export, answers 200 and counts requests and bytes, printed on SIGINT/SIGTERM.
 *
 *     npx tsx benchmarks/otlp-sink.ts 4318 &
 *     OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 npm run bench:http
 */
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 4318);
let requests = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on("data", (chunk: Buffer) => void (bytes += chunk.length));
  req.on("end", () => {
    requests += 1;
    res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/x-protobuf" }).end();
  });
});
server.listen(port, "127.0.0.1", () => console.log(`OTLP sink on http://127.0.0.1:${port}`));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`OTLP sink: ${requests} exports, ${bytes} bytes`);
    server.close(() => process.exit(0));
  });
}
