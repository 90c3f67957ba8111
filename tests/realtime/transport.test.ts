import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import test from "ava";
import WebSocket from "ws";
import { loadUws } from "../../lib/realtime/transport.ts";
import { within } from "../helpers/processes.ts";

test("the native uWebSockets.js binary is what runs here", (t) => {
  t.is(typeof loadUws().App, "function");
});

test("the silent pure-JS fallback is refused with a clear error", (t) => {
  const transport = fileURLToPath(new URL("../../lib/realtime/transport.ts", import.meta.url));
  const script = `import(${JSON.stringify(transport)}).then((m) => { m.loadUws(); console.log("loaded"); }, (e) => { console.log(String(e)); process.exit(3); }).catch((e) => { console.log("ERR " + e.message); process.exit(4); });`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    env: { ...process.env, UWS_USE_FALLBACK: "1" },
    encoding: "utf8",
    timeout: 30_000,
  });
  t.is(run.status, 4, run.stdout + run.stderr);
  t.regex(run.stdout, /fell back to its pure-JS implementation/);
});

/** Starts tests/realtime/late-upgrade-server.ts; resolves with its port, its output so far, and a stop. */
async function lateUpgradeServer(mode: "transport" | "own-cork") {
  const script = fileURLToPath(new URL("./late-upgrade-server.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, mode], { stdio: ["ignore", "pipe", "pipe"] });
  const output = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()));
  const port = await within(
    30_000,
    `the ${mode} server's port`,
    new Promise<number>((resolve, reject) => {
      child.stdout.on("data", () => {
        const match = /^port (\d+)$/m.exec(output.stdout);
        if (match !== null) resolve(Number(match[1]));
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${output.stderr}`)));
    }),
  );
  return { port, output, stop: () => child.kill("SIGKILL") };
}

/** One raw upgrade request; resolves with what became of the socket within `ms` of its 101. */
function upgradeAndWait(
  port: number,
  connection: string,
  ms: number,
): Promise<"kept" | "closed by the server" | string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    socket.on("connect", () =>
      socket.write(
        `GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: ${connection}\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.startsWith("HTTP/1.1 101") && received.includes("\r\n\r\n"))
        setTimeout(() => {
          if (socket.destroyed) return;
          socket.destroy();
          resolve("kept");
        }, ms);
    });
    socket.on("close", () => resolve(received.startsWith("HTTP/1.1 101") ? "closed by the server" : received));
  });
}

test("the pinned uWebSockets.js still shuts sockets upgraded late in their own cork (why lib/realtime/transport.ts has a cork host)", async (t) => {
  // uWS reads the upgraded socket's memory as the old response's flags; a request saying
  // Connection: close leaves the close flag there unless something reused the memory. When this
  // fails, uWS no longer does it: the cork host can go.
  const server = await lateUpgradeServer("own-cork");
  t.teardown(server.stop);
  const outcomes: string[] = [];
  for (let batch = 0; batch < 6; batch++)
    outcomes.push(...(await Promise.all(Array.from({ length: 10 }, () => upgradeAndWait(server.port, "close", 200)))));
  const shut = outcomes.filter((o) => o === "closed by the server").length;
  t.log(`${shut} of ${outcomes.length} upgraded sockets shut by uWS right after open`);
  t.true(shut > 0, outcomes.join(", "));
});

test("late upgrades through the transport: 2,000 at once, every socket kept and answering, no uWS warning", async (t) => {
  const server = await lateUpgradeServer("transport");
  t.teardown(server.stop);
  const url = `ws://127.0.0.1:${server.port}/socket`;
  const outcomes = await within(
    120_000,
    "2,000 echoes",
    Promise.all(
      Array.from(
        { length: 2_000 },
        (_, i) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url, { perMessageDeflate: false });
            ws.on("open", () => ws.send(`hello ${i}`));
            ws.on("message", (data: Buffer) => {
              resolve(String(data) === `hello ${i}` ? "echoed" : `wrong echo ${String(data)}`);
              ws.close(1000);
            });
            ws.on("close", (code: number) => resolve(`closed ${code} before its echo`));
            ws.on("error", (error: Error) => resolve(`error ${error.message}`));
          }),
      ),
    ),
  );
  t.deepEqual(
    outcomes.filter((o) => o !== "echoed"),
    [],
  );
  t.notRegex(server.output.stderr, /Warning/);
  t.notRegex(server.output.stdout, /closed \d+/);
  // A request saying Connection: close never reaches the late path.
  t.regex(await upgradeAndWait(server.port, "close", 100), /^HTTP\/1\.1 400 Bad Request/);
});
