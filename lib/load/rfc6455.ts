/**
 * A lean RFC 6455 client for load generation: a plain TCP socket, the HTTP/1.1 upgrade, and a
 * frame parser that hands each text message on as a Buffer slice, with no stream machinery, no
 * extensions (permessage-deflate is never offered) and no UTF-8 validation. Client frames are
 * masked with keys drawn from a pool filled by the system's CSPRNG, as the RFC requires.
 * Pings are answered with pongs; a close frame is echoed and the socket ends.
 *
 *     const c = dialRaw(new URL("ws://127.0.0.1:4001/socket/websocket?vsn=2.0.0"), undefined, handlers)
 *     c.send('[null,"1","phoenix","heartbeat",{}]')
 */
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { connect, type Socket } from "node:net";
import type { Connection, ConnectionHandlers } from "./connection.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MASK_POOL = Buffer.alloc(64 * 1024);
/** Every socket's reads, one at a time: each is parsed before the next read is made. */
const READ_BUFFER = Buffer.alloc(256 * 1024);
let maskAt = MASK_POOL.length;
/** A larger frame closes the connection (`frame_too_large`) instead of being buffered. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

function maskKey(): Buffer {
  if (maskAt + 4 > MASK_POOL.length) {
    randomFillSync(MASK_POOL);
    maskAt = 0;
  }
  const key = MASK_POOL.subarray(maskAt, maskAt + 4);
  maskAt += 4;
  return key;
}

/** One masked client frame (FIN set). */
function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 6 : length < 65536 ? 8 : 14;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  const key = maskKey();
  key.copy(frame, headerLength - 4);
  for (let i = 0; i < length; i++) frame[headerLength + i] = payload[i]! ^ key[i & 3]!;
  return frame;
}

export function dialRaw(
  url: URL,
  localAddress: string | undefined,
  handlers: ConnectionHandlers,
  timeoutMs: number,
): Connection {
  const port = Number(url.port || 80);
  const socket: Socket = connect({
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port,
    ...(localAddress === undefined ? {} : { localAddress }),
    // Reads land in one buffer shared by every socket and come straight to `received`: no Buffer
    // per read and no stream machinery between the read and the parser.
    onread: {
      buffer: READ_BUFFER,
      callback: (length) => {
        received(READ_BUFFER.subarray(0, length));
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  const key = randomBytes(16).toString("base64");
  const expectedAccept = createHash("sha1")
    .update(key + GUID)
    .digest("base64");
  let open = false;
  let done = false;
  /** Bytes of what a later read completes: a frame of known size filling in place while `filled` is below its length. */
  let pending: Buffer | undefined;
  let filled = 0;
  let fragments: Buffer[] = [];
  /** How many of `fragments`, from the first, may outlive this read; the rest are slices of the shared buffer. */
  let fragmentsKept = 0;
  const timer = setTimeout(() => fail("timeout"), timeoutMs);

  function fail(kind: string): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.destroy();
    if (open) handlers.onClose(1006);
    else handlers.onError(kind);
  }

  function finish(code: number): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.destroy();
    handlers.onClose(code);
  }

  socket.on("connect", () => {
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? "socket_error"));
  socket.on("close", () => fail(open ? "closed" : "closed_before_upgrade"));
  /**
   * One read, in the shared buffer: what must outlive the call is copied. The rest of a frame whose
   * header has arrived is copied once, into a buffer of the frame's size (a presence_state of
   * thousands of metas spans many reads, and appending each read to all the earlier ones made its
   * cost grow with the square of its size).
   */
  function received(chunk: Buffer): void {
    let data = chunk;
    let owned = false;
    if (pending !== undefined && filled < pending.length) {
      const taken = Math.min(chunk.length, pending.length - filled);
      chunk.copy(pending, filled, 0, taken);
      filled += taken;
      if (filled < pending.length) return;
      const frame = pending;
      pending = undefined;
      parse(frame, true);
      if (done || taken === chunk.length) return;
      data = chunk.subarray(taken);
    } else if (pending !== undefined) {
      // A few bytes: an upgrade response or a frame header cut short.
      data = Buffer.concat([pending, chunk]);
      owned = true;
      pending = undefined;
    }
    if (!open) {
      const end = data.indexOf("\r\n\r\n");
      if (end === -1) {
        keep(data, 0);
        return;
      }
      const head = data.toString("latin1", 0, end);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      if (status !== "101") return fail(`upgrade_${status ?? "garbled"}`);
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
      if (accept !== expectedAccept) return fail("upgrade_bad_accept");
      open = true;
      clearTimeout(timer);
      data = data.subarray(end + 4);
      handlers.onOpen();
    }
    parse(data, owned);
  }

  /** What is left of `data` from `at` on, copied, for the next read to complete. */
  function keep(data: Buffer, at: number): void {
    pending = Buffer.from(data.subarray(at));
    filled = pending.length;
  }

  /** Hands on every whole frame in `data` (`owned`: not the shared read buffer, so its slices may be kept). */
  function parse(data: Buffer, owned: boolean): void {
    let at = 0;
    while (!done && data.length - at >= 2) {
      const b0 = data[at]!;
      const b1 = data[at + 1]!;
      let length = b1 & 0x7f;
      let offset = at + 2;
      if (length === 126) {
        if (data.length - at < 4) break;
        length = data.readUInt16BE(at + 2);
        offset = at + 4;
      } else if (length === 127) {
        if (data.length - at < 10) break;
        length = data.readUInt32BE(at + 2) * 2 ** 32 + data.readUInt32BE(at + 6);
        offset = at + 10;
      }
      if (b1 & 0x80) return fail("masked_server_frame");
      if (length > MAX_FRAME_BYTES) return fail("frame_too_large");
      if (data.length < offset + length) {
        pending = Buffer.allocUnsafe(offset + length - at);
        filled = data.copy(pending, 0, at);
        at = data.length;
        break;
      }
      const payload = data.subarray(offset, offset + length);
      at = offset + length;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        if (fin && fragments.length === 0) handlers.onFrame(payload);
        else {
          // A fragmented message, put together once its last fragment is in.
          fragments.push(payload);
          if (owned) fragmentsKept = fragments.length;
          if (fin) {
            const whole = Buffer.concat(fragments);
            fragments = [];
            fragmentsKept = 0;
            handlers.onFrame(whole);
          }
        }
      } else if (opcode === 0x9) socket.write(encodeClientFrame(0xa, payload));
      else if (opcode === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        socket.write(encodeClientFrame(0x8, payload.subarray(0, 2)));
        return finish(code);
      }
    }
    if (at < data.length && !done) keep(data, at);
    // A message still missing fragments keeps copies of those in the shared buffer, which the next read overwrites.
    for (let i = fragmentsKept; i < fragments.length; i++) fragments[i] = Buffer.from(fragments[i]!);
    fragmentsKept = fragments.length;
  }

  return {
    send(text) {
      if (open && !done) socket.write(encodeClientFrame(0x1, Buffer.from(text)));
    },
    close(code = 1000) {
      if (!open || done) return fail("closed_by_client");
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code, 0);
      socket.write(encodeClientFrame(0x8, body));
      setTimeout(() => finish(code), 1000).unref();
    },
    terminate() {
      if (!done) {
        done = true;
        clearTimeout(timer);
        socket.destroy();
      }
    },
    bufferedAmount: () => socket.writableLength,
  };
}
