/**
 * lib/load/rfc6455.ts, the load generator's own WebSocket client, against a server written here byte
 * by byte: the upgrade and frames split across reads at awkward places, frames of 16- and 64-bit
 * length, fragmented messages, a ping, a close; two sockets whose partial frames interleave, since
 * every socket reads into one shared buffer; and a frame too large to buffer.
 */
import { createHash } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import test, { type ExecutionContext } from "ava";
import type { Connection } from "../../lib/load/connection.ts";
import { dialRaw } from "../../lib/load/rfc6455.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const body = Buffer.from(payload);
  const first = (fin ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (body.length < 126) head = Buffer.from([first, body.length]);
  else if (body.length < 65536) head = Buffer.from([first, 126, body.length >> 8, body.length & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(body.length), 2);
  }
  return Buffer.concat([head, body]);
}

/** The client's frames (masked), as far as `data` holds whole ones. */
function clientFrames(data: Buffer): { opcode: number; payload: Buffer }[] {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (data.length - at >= 6) {
    const length = data[at + 1]! & 0x7f; // the client's frames here are all short
    const key = data.subarray(at + 2, at + 6);
    const payload = Buffer.from(data.subarray(at + 6, at + 6 + length).map((b, i) => b ^ key[i & 3]!));
    frames.push({ opcode: data[at]! & 0x0f, payload });
    at += 6 + length;
  }
  return frames;
}

interface Peer {
  socket: Socket;
  /** Everything the client sent after its upgrade request. */
  received: () => Buffer;
  /** Writes the 101 answer to the client's key. */
  accept: () => Buffer;
}

/** A TCP server that hands each connection over once the client's upgrade request is in. */
async function listen(t: ExecutionContext): Promise<{ port: number; next: () => Promise<Peer> }> {
  const waiting: ((peer: Peer) => void)[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let data = Buffer.alloc(0);
    let head: string | undefined;
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (head !== undefined) return;
      const end = data.indexOf("\r\n\r\n");
      if (end === -1) return;
      head = data.toString("latin1", 0, end);
      data = data.subarray(end + 4);
      const key = /sec-websocket-key: (\S+)/i.exec(head)![1]!;
      const answer = createHash("sha1")
        .update(key + GUID)
        .digest("base64");
      waiting.shift()!({
        socket,
        received: () => data,
        accept: () =>
          Buffer.from(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${answer}\r\n\r\n`,
          ),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // Also when a test fails half way: nothing may keep the process alive.
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return { port, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

interface Client {
  connection: Connection;
  frames: string[];
  closed: number[];
  errors: string[];
  opened: Promise<void>;
}

function dial(port: number): Client {
  const frames: string[] = [];
  const closed: number[] = [];
  const errors: string[] = [];
  let opened!: () => void;
  let refused!: (error: Error) => void;
  const open = new Promise<void>((resolve, reject) => {
    opened = resolve;
    refused = reject;
  });
  open.catch(() => {}); // awaited by the tests that expect it to open
  const connection = dialRaw(
    new URL(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`),
    undefined,
    {
      onOpen: opened,
      // The buffer is the shared read buffer: what is kept must be copied, as here.
      onFrame: (data) => frames.push(data.toString("utf8")),
      onClose: (code) => closed.push(code),
      onError: (kind) => {
        errors.push(kind);
        refused(new Error(`the socket did not open: ${kind}`));
      },
    },
    5_000,
  );
  return { connection, frames, closed, errors, opened: open };
}

/** Writes `bytes` in pieces cut at `cuts`, each piece in a read of its own as far as timing allows. */
async function writeCut(socket: Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    socket.write(bytes.subarray(from, cut));
    from = cut;
    await sleep(15);
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(10);
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

test("the upgrade and frames split across reads, a 16-bit length, fragments, a ping and a close", async (t) => {
  const { port, next } = await listen(t);
  const client = dial(port);
  const peer = await next();
  const long = "x".repeat(300);
  // The 101 cut inside its headers, and the first frame arriving in the same read as the headers' end.
  const opening = Buffer.concat([peer.accept(), frame(0x1, "first")]);
  await writeCut(peer.socket, opening, [20, opening.length - 4]);
  await client.opened;
  const rest = Buffer.concat([
    frame(0x1, long), // 126 + 16-bit length, cut inside its length and its payload below
    frame(0x1, "he", false),
    frame(0x0, "ll", false),
    frame(0x0, "o"),
    frame(0x9, "are you there"),
  ]);
  await writeCut(peer.socket, rest, [1, 3, 150, 305]);
  await until(() => client.frames.length === 3, "three messages");
  t.deepEqual(client.frames, ["first", long, "hello"]);
  await until(() => clientFrames(peer.received()).length === 1, "the pong");
  t.deepEqual(clientFrames(peer.received())[0], { opcode: 0xa, payload: Buffer.from("are you there") });
  const close = Buffer.alloc(2);
  close.writeUInt16BE(1001);
  await writeCut(peer.socket, frame(0x8, close), [1]);
  await until(() => client.closed.length === 1, "the close");
  t.deepEqual(client.closed, [1001]);
  await until(() => clientFrames(peer.received()).length === 2, "the echoed close");
  t.deepEqual(clientFrames(peer.received())[1], { opcode: 0x8, payload: close }, "the close is echoed");
  t.deepEqual(client.errors, []);
});

test("two sockets whose partial frames interleave keep their own bytes (one shared read buffer)", async (t) => {
  const { port, next } = await listen(t);
  const a = dial(port);
  const peerA = await next();
  const b = dial(port);
  const peerB = await next();
  peerA.socket.write(peerA.accept());
  peerB.socket.write(peerB.accept());
  await Promise.all([a.opened, b.opened]);
  for (let i = 0; i < 20; i++) {
    const frameA = frame(0x1, `a${i}`.repeat(40));
    const frameB = frame(0x1, `b${i}`.repeat(45));
    // Half of A's frame, all of B's (overwriting the shared buffer), then the rest of A's.
    peerA.socket.write(frameA.subarray(0, 37));
    await sleep(5);
    peerB.socket.write(frameB);
    await sleep(5);
    peerA.socket.write(frameA.subarray(37));
  }
  await until(() => a.frames.length === 20 && b.frames.length === 20, "forty messages");
  t.deepEqual(
    a.frames,
    Array.from({ length: 20 }, (_, i) => `a${i}`.repeat(40)),
  );
  t.deepEqual(
    b.frames,
    Array.from({ length: 20 }, (_, i) => `b${i}`.repeat(45)),
  );
  a.connection.terminate();
  b.connection.terminate();
});

test("a refused upgrade is reported by its status, and the socket never opens", async (t) => {
  const { port, next } = await listen(t);
  const client = dial(port);
  const peer = await next();
  peer.socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  await until(() => client.errors.length === 1, "the refusal");
  t.deepEqual(client.errors, ["upgrade_403"]);
  t.deepEqual(client.frames, []);
});

test("a frame of 64-bit length over many reads, then fragments whose large middle spans reads", async (t) => {
  const { port, next } = await listen(t);
  const client = dial(port);
  const peer = await next();
  peer.socket.write(peer.accept());
  await client.opened;
  const big = Array.from({ length: 30_000 }, (_, i) => `${i % 10_000}`.padStart(10, "-")).join(""); // 300,000 bytes
  const middle = "m".repeat(100_000);
  const stream = Buffer.concat([
    frame(0x1, big), // cut inside its 64-bit length, then in its payload, then just past its end
    frame(0x1, "after"),
    frame(0x1, "start:", false),
    frame(0x0, middle, false), // cut in its payload
    frame(0x0, ":end"),
  ]);
  await writeCut(peer.socket, stream, [5, 1_000, 70_000, 200_000, 300_013, 300_030, 350_000]);
  await until(() => client.frames.length === 3, "three messages");
  t.is(client.frames[0]!.length, big.length);
  t.true(client.frames[0] === big, "the 300,000-byte frame arrives intact");
  t.deepEqual(client.frames.slice(1), ["after", `start:${middle}:end`]);
  t.deepEqual(client.errors, []);
  client.connection.terminate();
});

test("a frame whose length is past 64 MiB ends the connection instead of being buffered", async (t) => {
  const { port, next } = await listen(t);
  const client = dial(port);
  const peer = await next();
  peer.socket.write(peer.accept());
  await client.opened;
  const head = Buffer.from([0x81, 127, 0, 0, 1, 0, 0, 0, 0, 0]); // 2^40 bytes announced
  peer.socket.write(Buffer.concat([frame(0x1, "before"), head, Buffer.from("x".repeat(100))]));
  await until(() => client.closed.length === 1, "the connection's end");
  t.deepEqual(client.frames, ["before"]);
  t.deepEqual(client.closed, [1006]);
});
