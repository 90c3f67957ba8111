/**
 * Child-process entry for `promises.ts` (never run by hand): counts every promise the process
 * creates (an `async_hooks` PROMISE init hook, installed before anything else is loaded) and
 * answers `{type: "count"}` with the count and the process's CPU time so far. It then serves
 * either Hypercast exactly as the HTTP benchmark runs it (`../lib/hypercast-server.ts`) or, with
 * `"bare": true` in its JSON argument, a bare `node:http` server answering `200 {}` to anything:
 * the floor that the same client costs any server.
 *
 * Argument: JSON `{ databaseUrl, logLevel, bare? }`. Ready message: as the server it runs.
 */
import { createHook } from "node:async_hooks";
import { createServer } from "node:http";
import { serveUntilStopped } from "../lib/processes.ts";

export interface CountReply {
  type: "count";
  promises: number;
  cpuMicros: number;
}

let promises = 0;
createHook({
  init(_id, type) {
    if (type === "PROMISE") promises++;
  },
}).enable();

process.on("message", (message: { type?: string }) => {
  if (message.type !== "count") return;
  const cpu = process.cpuUsage();
  process.send?.({ type: "count", promises, cpuMicros: cpu.user + cpu.system } satisfies CountReply);
});

const options = JSON.parse(process.argv[2] ?? "{}") as { bare?: boolean };
if (options.bare === true) {
  serveUntilStopped(async () => {
    const body = Buffer.from("{}");
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": body.length });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    return {
      info: { url: `http://127.0.0.1:${port}`, token: "", userId: 0 },
      stop: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  });
} else {
  await import("../lib/hypercast-server.ts");
}
