/**
 * Per-socket and per-user limits (README, Realtime), attacked as an attacker would: a burst of
 * concurrent upgrades past SOCKETS_PER_USER, a flood of events past the refusal window, a push
 * while the database is cut (tests/helpers/proxied-database.ts), and a queue that cannot grow
 * without bound while the database stalls.
 */
import test from "ava";
import WebSocket from "ws";
import { CLOSE } from "../../lib/realtime/index.ts";
import { FLOOD_REFUSALS } from "../../lib/realtime/close-codes.ts";
import { startTestServer } from "../helpers/http.ts";
import { startProxiedDatabase } from "../helpers/proxied-database.ts";
import { createWorld, WAIT_MS, within } from "./helpers.ts";
import { openRaw, type Frame, type RawClient } from "./raw.ts";

/** Opens a socket and resolves with 101 (kept open) or the refusal's status and Retry-After. */
function attempt(url: string): Promise<{ status: number; retryAfter?: string; ws?: WebSocket }> {
  return within(
    WAIT_MS,
    "upgrade",
    new Promise((resolve) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once("open", () => resolve({ status: 101, ws }));
      ws.once("unexpected-response", (_req, res) => {
        resolve({ status: res.statusCode ?? 0, retryAfter: String(res.headers["retry-after"]) });
        res.resume();
        ws.terminate();
      });
      ws.once("error", () => resolve({ status: -1 }));
    }),
  );
}

test.serial(
  "SOCKETS_PER_USER: of 25 concurrent upgrades by one user, exactly the limit get in, the rest 429 with Retry-After; others are not affected",
  async (t) => {
    const world = await createWorld({ env: { SOCKETS_PER_USER: "8" } });
    try {
      const user = await world.user("greedy");
      const other = await world.user("other");
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 25 }, () => attempt(world.url(`token=${user.token}`))));
      t.log(`25 upgrades answered in ${Math.round(performance.now() - started)} ms`);
      const open = results.filter((r) => r.status === 101);
      t.is(open.length, 8);
      t.is(results.filter((r) => r.status === 429).length, 17);
      t.true(results.filter((r) => r.status === 429).every((r) => r.retryAfter === "5"));
      t.is((await attempt(world.url(`token=${other.token}`))).status, 101, "another user still connects");

      // Closing one frees one slot, exactly.
      const closed = new Promise((resolve) => open[0]!.ws!.once("close", resolve));
      open[0]!.ws!.close();
      await closed;
      const again = await Promise.all([
        attempt(world.url(`token=${user.token}`)),
        attempt(world.url(`token=${user.token}`)),
      ]);
      t.deepEqual(again.map((r) => r.status).sort(), [101, 429]);
      for (const r of [...open, ...again]) r.ws?.close();
    } finally {
      await world.close();
    }
  },
);

test.serial(
  "a flood: past 200 refusals within 10 s the socket is closed with 4429, each refusal answered until then; a bystander never notices",
  async (t) => {
    const world = await createWorld({ env: { SOCKET_RATE_LIMIT: "1", SOCKET_RATE_BURST: "10" } });
    try {
      const user = await world.user();
      const bystander = await openRaw(world.url(`token=${user.token}`));
      const flooder = await openRaw(world.url(`token=${user.token}`));
      const big = "x".repeat(60_000); // refusals must not cost a parse of this
      const total = 10 + FLOOD_REFUSALS + 50;
      const replies: unknown[] = [];
      const reading = (async () => {
        for (;;) {
          const frame = await flooder.next().catch(() => undefined);
          if (frame === undefined) return;
          replies.push(frame);
        }
      })();
      // The flood goes out in rounds of 30 frames (1.8 MB); with each round the bystander pings and
      // waits for its reply while the server is still taking that round in. Until the round that
      // passes FLOOD_REFUSALS, the flooder cannot have been closed: those pings are answered during the flood.
      const PROMPT_MS = 1000; // a reply is prompt within this (a generous margin for a loaded machine)
      const pings: Array<{ ms: number; floodOpen: boolean }> = [];
      let flooderClosed = false;
      void flooder.closed.then(() => (flooderClosed = true));
      for (let sent = 0, ref = 1; sent < total; ref++) {
        for (const end = Math.min(total, sent + 30); sent < end; sent++)
          flooder.sendFrame([null, String(sent), "phoenix", "heartbeat", { big }]);
        const started = performance.now();
        bystander.sendFrame([null, String(ref), "phoenix", "heartbeat", {}]);
        t.like(await bystander.next(), [null, String(ref), "phoenix", "phx_reply", { status: "ok" }]);
        pings.push({ ms: performance.now() - started, floodOpen: !flooderClosed });
      }
      await reading;
      t.log(`bystander round trips during the flood: ${pings.map((p) => p.ms.toFixed(1)).join(", ")} ms`);
      t.true(pings.filter((p) => p.floodOpen).length >= 6, "the bystander was answered while the flood went on");
      t.true(
        pings.every((p) => p.ms <= PROMPT_MS),
        `every bystander ping was answered within ${PROMPT_MS} ms`,
      );
      t.is((await flooder.closed).code, CLOSE.FLOODING);
      const refused = replies.filter((r) => JSON.stringify(r).includes("rate_limited"));
      // The bucket refills at 1/s while the 15 MB arrive, so a token or two may serve a later frame.
      t.true(replies.length - refused.length >= 10, "the burst was served");
      t.is(refused.length, FLOOD_REFUSALS, "every refusal before the flood limit was answered");
      t.deepEqual((refused[0] as unknown[]).slice(2), [
        "phoenix",
        "phx_reply",
        { status: "error", response: { reason: "rate_limited" } },
      ]);
      bystander.sendFrame([null, "100", "phoenix", "heartbeat", {}]);
      t.like(await bystander.next(), [null, "100", "phoenix", "phx_reply", { status: "ok" }], "and after it");
      bystander.close();
    } finally {
      await world.close();
    }
  },
);

test.serial(
  "a push that finds the database unreachable is answered {reason: unavailable}; the socket lives on and pushes work again once it is back",
  async (t) => {
    const database = await startProxiedDatabase();
    const app = await startTestServer(database.env);
    let client: RawClient | undefined;
    try {
      const me = await app.signUp("resilient");
      const room = await app.request("POST", "/rooms", { token: me.token, json: { name: "down" } });
      const topic = `room:${room.body.id}`;
      client = await openRaw(`${app.server.socketUrl}/websocket?vsn=2.0.0&token=${me.socketToken}`);
      client.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
      t.like(await client.nextEvent("phx_reply"), ["1", "1", topic, "phx_reply", { status: "ok" }]);

      await database.proxy.cut();
      client.sendFrame(["1", "2", topic, "message:new", { body: "into the void" }]);
      t.deepEqual(await client.nextEvent("phx_reply"), [
        "1",
        "2",
        topic,
        "phx_reply",
        { status: "error", response: { reason: "unavailable" } },
      ]);
      client.sendFrame([null, "3", "phoenix", "heartbeat", {}]);
      t.like(
        await client.nextEvent("phx_reply"),
        [null, "3", "phoenix", "phx_reply", { status: "ok" }],
        "the socket and its channel live on",
      );

      await database.proxy.restore();
      const deadline = Date.now() + WAIT_MS;
      let status = "error";
      for (let ref = 4; status !== "ok" && Date.now() < deadline; ref++) {
        client.sendFrame(["1", String(ref), topic, "message:new", { body: "back" }]);
        const reply = await client.nextEvent("phx_reply");
        status = (reply[4] as { status: string }).status;
        if (status !== "ok") await new Promise((r) => setTimeout(r, 200));
      }
      t.is(status, "ok");
    } finally {
      client?.close();
      await database.proxy.restore();
      await app.stop();
      await database.close();
    }
  },
);

test.serial(
  "the inbound queue is bounded: while a push waits on a stalled database, events past the bound are refused at once",
  async (t) => {
    // The database stalls for real: the proxy holds the connection that sends the message
    // writer's insert (lib/rooms/message-writer.ts) until resume().
    const database = await startProxiedDatabase();
    // The queue holds one burst: 20 here; the bucket refills fast enough never to refuse on its own.
    const app = await startTestServer({
      ...database.env,
      SOCKET_RATE_LIMIT: "1000000",
      SOCKET_RATE_BURST: "20",
    });
    let client: RawClient | undefined;
    try {
      const me = await app.signUp("stalled");
      const room = await app.request("POST", "/rooms", { token: me.token, json: { name: "stalled" } });
      const topic = `room:${room.body.id}`;
      client = await openRaw(`${app.server.socketUrl}/websocket?vsn=2.0.0&token=${me.socketToken}`);
      client.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
      t.like(await client.nextEvent("phx_reply"), ["1", "1", topic, "phx_reply", { status: "ok" }]);

      const held = database.proxy.holdOn("insert into messages");
      for (let i = 0; i < 100; i++) client.sendFrame(["1", String(100 + i), topic, "message:new", { body: `m${i}` }]);
      await within(WAIT_MS, "the message insert to reach the proxy", held);
      // 1 in service (its insert held) + 20 queued; the other 79 are refused while the insert waits.
      const refused: Frame[] = [];
      while (refused.length < 79) refused.push(await client.nextEvent("phx_reply"));
      t.true(
        refused.every(
          (r) => (r[4] as { status: string; response: { reason?: string } }).response.reason === "rate_limited",
        ),
        "every reply before the insert is answered is a rate_limited refusal",
      );
      t.deepEqual(
        refused.map((r) => Number(r[1])),
        Array.from({ length: 79 }, (_, i) => 121 + i),
        "the pushes past 1 + 20 are the ones refused, at once",
      );

      database.proxy.resume();
      const served: Frame[] = [];
      while (served.length < 21) served.push(await client.nextEvent("phx_reply"));
      t.deepEqual(
        served.map((r) => [Number(r[1]), (r[4] as { status: string }).status]),
        Array.from({ length: 21 }, (_, i) => [100 + i, "ok"]),
        "the one in service and the 20 queued are served, in order, once the database answers",
      );
      client.sendFrame(["1", "200", topic, "message:new", { body: "after" }]);
      t.like(
        await client.nextEvent("phx_reply"),
        ["1", "200", topic, "phx_reply", { status: "ok" }],
        "served again once the queue drains",
      );
    } finally {
      client?.close();
      database.proxy.resume();
      await app.stop();
      await database.close();
    }
  },
);
