/**
 * The publisher's timer (lib/load/after-io.ts) against a bare setTimeout, on a real loopback socket:
 * data arrives while the event loop is blocked past the timer's due time, as after a load worker's lag.
 */
import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { setTimeoutAfterIo } from "../../lib/load/after-io.ts";

async function socketPair(): Promise<{ client: net.Socket; peer: net.Socket; close(): void }> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await once(client, "connect");
  const [peer] = await accepted;
  return {
    client,
    peer,
    close() {
      client.destroy();
      peer.destroy();
      server.close();
    },
  };
}

/** Which ran first: the timer, or the handler of data written (and waiting) while the loop was blocked. */
async function firstAfterLag(schedule: (callback: () => void, ms: number) => unknown): Promise<string[]> {
  const { client, peer, close } = await socketPair();
  const order: string[] = [];
  peer.once("data", () => order.push("data"));
  await new Promise<void>((resolve) => {
    schedule(() => {
      order.push("timer");
      resolve();
    }, 5);
    client.write("x");
    const until = performance.now() + 50;
    while (performance.now() < until) {
      // the loop is blocked past the timer's due time, with the data waiting in the socket
    }
  });
  await sleep(20);
  close();
  return order;
}

test("after a lag, a bare timer runs before data already waiting is read; setTimeoutAfterIo runs after it", async (t) => {
  t.deepEqual(await firstAfterLag(setTimeout), ["timer", "data"]);
  t.deepEqual(await firstAfterLag(setTimeoutAfterIo), ["data", "timer"]);
});
