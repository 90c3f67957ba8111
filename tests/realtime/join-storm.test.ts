/**
 * No socket lost at the door: 300 phoenix clients connect and join one room at once, presence
 * tracked (every join also sends a presence diff to every socket already in), and every one of
 * them must get its join reply; none may be closed (1006 or otherwise) on the way. Repeated for
 * rounds, since the loss this guards against was rare (about one socket in 300 in a third of the
 * runs; one in 40 on a loaded CI machine). Both ways an upgrade is decided are run: inside
 * uWebSockets.js's upgrade callback (one node), and later, once the cluster's socket quota has had
 * Redis's answer (written in the cork host's cork, lib/realtime/transport.ts). An upgrade request
 * that does not say `Connection: Upgrade` — uWS would treat it as `Connection: close` and shut the
 * socket it had just upgraded — is refused with 400 either way.
 */
import net from "node:net";
import { Socket } from "phoenix";
import test, { type ExecutionContext } from "ava";
import WebSocket from "ws";
import { startRedisServer, type OwnedRedis } from "../helpers/processes.ts";
import { createWorld, until, within } from "./helpers.ts";

const SOCKETS = 300;
const ROUNDS = 20;

const DECIDED = {
  now: "decided in the upgrade callback",
  late: "decided after a Redis round trip (the cluster's socket quota)",
} as const;
type Decided = keyof typeof DECIDED;

let redis: OwnedRedis | undefined;
test.after.always(() => redis?.kill());

/**
 * A world with one user and one room of theirs; the user may hold every socket of a round. `late`:
 * the socket quota asks Redis before each upgrade.
 */
async function roomWorld(t: ExecutionContext, decided: Decided, name: string) {
  if (decided === "late") redis ??= await startRedisServer();
  const env: Record<string, string> = { SOCKETS_PER_USER: "100000" };
  if (decided === "late") env["REDIS_URL"] = redis!.url;
  const world = await createWorld({ env });
  t.teardown(() => world.close());
  const owner = await world.user(name);
  const room = await world.deps.rooms.createRoom(owner.id, { name });
  return { world, owner, topic: `room:${room.id}` };
}

for (const decided of ["now", "late"] as const) {
  test.serial(
    `${ROUNDS} rounds of ${SOCKETS} sockets joining one room at once lose none: upgrades ${DECIDED[decided]}`,
    async (t) => {
      const { world, owner, topic } = await roomWorld(t, decided, "storm");

      for (let round = 1; round <= ROUNDS; round++) {
        const losses: string[] = [];
        const sockets: Socket[] = [];
        const replies = Array.from({ length: SOCKETS }, (_, i) => {
          const socket = new Socket(world.endpoint(), {
            transport: WebSocket,
            params: { token: owner.token },
            timeout: 60_000,
            heartbeatIntervalMs: 60_000,
            reconnectAfterMs: () => 60_000, // a lost socket must show, not be quietly replaced
          } as ConstructorParameters<typeof Socket>[1]);
          sockets.push(socket);
          let replied = false;
          socket.onClose((event: { code?: number }) => {
            if (!replied) losses.push(`socket ${i}: closed with ${event.code} before its join reply`);
          });
          socket.onError((error: unknown) => {
            if (!replied)
              losses.push(
                `socket ${i}: error ${String((error as { message?: string }).message ?? error)} before its join reply`,
              );
          });
          socket.connect();
          return new Promise<string>((resolve) => {
            socket
              .channel(topic, {})
              .join()
              .receive("ok", () => {
                replied = true;
                resolve("ok");
              })
              .receive("error", (reason: unknown) => resolve(`error ${JSON.stringify(reason)}`))
              .receive("timeout", () => resolve("timeout"));
            socket.onClose(() => resolve("closed"));
          });
        });
        const outcomes = await within(120_000, `round ${round}'s join replies`, Promise.all(replies));
        const ok = outcomes.filter((o) => o === "ok").length;
        t.deepEqual(losses, [], `round ${round}`);
        t.is(ok, SOCKETS, `round ${round}: ${outcomes.filter((o) => o !== "ok").join(", ")}`);
        for (const socket of sockets) socket.disconnect();
        await until(`round ${round}'s sockets closed on the server`, () => world.realtime.connections() === 0, 60_000);
        if (losses.length > 0 || ok !== SOCKETS) return;
      }
    },
  );
}

/** A client-to-server text frame (masked, as RFC 6455 requires of clients). */
function maskedFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x1f, 0x2e, 0x3d, 0x4c]);
  const length =
    payload.length < 126
      ? Buffer.from([0x80 | payload.length])
      : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([Buffer.from([0x81]), length, mask, payload.map((byte, i) => byte ^ mask[i % 4]!)]);
}

/** Sends a raw upgrade request; resolves with what the server did: its status line, then the join reply if 101. */
function rawUpgrade(port: number, token: string, topic: string, connection: string): Promise<string> {
  return new Promise<string>((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    let joined = false;
    socket.on("connect", () => {
      socket.write(
        `GET /socket/websocket?vsn=2.0.0&token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
          `Connection: ${connection}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (!joined && received.startsWith("HTTP/1.1 101") && received.includes("\r\n\r\n")) {
        joined = true;
        socket.write(maskedFrame(JSON.stringify(["1", "1", topic, "phx_join", {}])));
      }
      if (received.includes('"phx_reply"')) {
        socket.destroy();
        resolve("101, then the join reply");
      }
    });
    socket.on("close", () => resolve(received.startsWith("HTTP/1.1 101") ? "101, then closed" : received));
  });
}

for (const decided of ["now", "late"] as const) {
  test.serial(
    `an upgrade request must say Connection: Upgrade, else 400 with the reason: upgrades ${DECIDED[decided]}`,
    async (t) => {
      const { world, owner, topic } = await roomWorld(t, decided, "door");
      for (const connection of ["Upgrade", "keep-alive, Upgrade", "upgrade"]) {
        const seen = await within(
          15_000,
          `Connection: ${connection}`,
          rawUpgrade(world.realtime.port, owner.token, topic, connection),
        );
        t.is(seen, "101, then the join reply", `Connection: ${connection}`);
      }
      for (const connection of ["close", "keep-alive", "Upgraded"]) {
        const seen = await within(
          15_000,
          `Connection: ${connection}`,
          rawUpgrade(world.realtime.port, owner.token, topic, connection),
        );
        t.regex(seen, /^HTTP\/1\.1 400 Bad Request\r\n/, `Connection: ${connection}`);
        t.regex(seen, /must say Connection: Upgrade \(RFC 6455, section 4\.1\)/, `Connection: ${connection}`);
      }
    },
  );
}
