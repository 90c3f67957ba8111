import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import test from "ava";
import WebSocket from "ws";
import { listen, loadUws, type Connection } from "../../lib/realtime/transport.ts";
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

/** The frames a server sends, as a raw client reads them (server frames are never masked). */
interface WireFrame {
  fin: boolean;
  opcode: number;
  text: string;
}

function readFrames(bytes: Buffer): { frames: WireFrame[]; rest: Buffer } {
  const frames: WireFrame[] = [];
  let at = 0;
  for (;;) {
    if (bytes.length - at < 2) break;
    let length = bytes[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) [length, start] = [bytes.readUInt16BE(at + 2), at + 4];
    else if (length === 127) [length, start] = [Number(bytes.readBigUInt64BE(at + 2)), at + 10];
    if (bytes.length < start + length) break;
    frames.push({
      fin: (bytes[at]! & 0x80) !== 0,
      opcode: bytes[at]! & 0x0f,
      text: bytes.toString("utf8", start, start + length),
    });
    at = start + length;
  }
  return { frames, rest: bytes.subarray(at) };
}

test("a fragmented send is one text message in three frames, after what was published to the socket before it", async (t) => {
  const body = JSON.stringify({ metas: "é".repeat(50_000) }); // over 64 KiB of UTF-8: a 64-bit length
  let connection: Connection | undefined;
  const transport = await listen<null>(
    {
      host: "127.0.0.1",
      port: 0,
      path: "/socket",
      maxPayloadLength: 65_536,
      maxBackpressure: 1 << 20,
      idleTimeoutSeconds: 60,
    },
    {
      upgrade: () => ({ accept: true, session: null, protocol: "" }) as const,
      open(opened) {
        connection = opened;
        opened.subscribe("stream");
        return {
          message() {
            // Published first, queued by uWS for the socket: it must come out before the fragments.
            transport.publish("stream", "before");
            opened.cork(() => t.true(opened.sendFragmented('["head",', Buffer.from(body), "]")));
            opened.send("after");
          },
          closed() {},
        };
      },
      error: (error) => t.fail(String(error)),
    },
  );
  t.teardown(() => {
    connection?.close(1000, "done");
    transport.stopListening();
  });
  const frames = await within(
    15_000,
    "five frames",
    new Promise<WireFrame[]>((resolve, reject) => {
      const socket = net.connect(transport.port, "127.0.0.1");
      let buffered: Buffer = Buffer.alloc(0);
      let upgraded = false;
      const frames: WireFrame[] = [];
      socket.on("connect", () =>
        socket.write(
          "GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
      );
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (!upgraded) {
          const end = buffered.indexOf("\r\n\r\n");
          if (end < 0) return;
          upgraded = true;
          buffered = buffered.subarray(end + 4);
          const mask = Buffer.from([1, 2, 3, 4]);
          const go = Buffer.from("go").map((byte, i) => byte ^ mask[i % 4]!);
          socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | go.length]), mask, go]));
        }
        const read = readFrames(buffered);
        buffered = read.rest;
        frames.push(...read.frames);
        if (frames.length >= 5) {
          socket.destroy();
          resolve(frames);
        }
      });
      socket.on("error", reject);
    }),
  );
  t.deepEqual(frames, [
    { fin: true, opcode: 1, text: "before" },
    { fin: false, opcode: 1, text: '["head",' },
    { fin: false, opcode: 0, text: body },
    { fin: true, opcode: 0, text: "]" },
    { fin: true, opcode: 1, text: "after" },
  ]);
});
