/**
 * The realtime tier wired into the process (lib/server.ts): a message POSTed over REST reaches
 * sockets of both versions, and GET /rooms/{id}/presence shows what presence_state shows.
 */
import test from "ava";
import { Socket } from "phoenix";
import WebSocket from "ws";
import { startTestServer } from "../helpers/http.ts";
import { join, nextEvent, WAIT_MS, within } from "./helpers.ts";

test("REST-created messages reach sockets; REST presence equals presence_state", async (t) => {
  const app = await startTestServer();
  const sockets: Socket[] = [];
  try {
    const alice = await app.signUp("alice");
    const room = await app.request("POST", "/rooms", { token: alice.token, json: { name: "wired" } });
    t.is(room.status, 201);
    const topic = `room:${room.body.id as number}`;
    const channels = [];
    for (const version of ["1", "2"]) {
      const socket = new Socket(app.server.socketUrl, {
        transport: WebSocket,
        params: { token: alice.socketToken, api_version: version },
        timeout: WAIT_MS,
      } as ConstructorParameters<typeof Socket>[1]);
      sockets.push(socket);
      socket.connect();
      const channel = socket.channel(topic, {});
      const state = nextEvent(channel, "presence_state");
      t.is((await join(channel)).status, "ok");
      channels.push({ version, channel, state: await state });
    }
    const v1 = nextEvent(channels[0]!.channel, "message:new");
    const v2 = nextEvent(channels[1]!.channel, "message:new");
    const created = await app.request("POST", `/rooms/${room.body.id as number}/messages`, {
      token: alice.token,
      json: { body: "over REST" },
      accept: "application/vnd.app.v2+json",
    });
    t.is(created.status, 201);
    const [m1, m2] = await within(WAIT_MS, "broadcasts", Promise.all([v1, v2]));
    t.deepEqual(m2, created.body);
    const restV1 = await app.request("GET", `/rooms/${room.body.id as number}/messages/${created.body.id as number}`, {
      token: alice.token,
      accept: "application/vnd.app.v1+json",
    });
    t.deepEqual(m1, restV1.body);
    const presence = await app.request("GET", `/rooms/${room.body.id as number}/presence`, { token: alice.token });
    t.is(presence.status, 200);
    t.deepEqual(Object.keys(presence.body.presences as object), [String(alice.id)]);
    t.is((presence.body.presences[String(alice.id)].metas as unknown[]).length, 2);
  } finally {
    for (const s of sockets) s.disconnect();
    await app.stop();
  }
});

test("realtime activity shows in /metrics: sockets, joins, messages in and out, fan-out, presence", async (t) => {
  const app = await startTestServer();
  let socket: Socket | undefined;
  const metric = async (name: string): Promise<number> => {
    const text = (await app.request("GET", "/metrics")).text;
    const line = text.split("\n").find((l) => l.startsWith(name) && !l.startsWith("#"));
    return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  try {
    const alice = await app.signUp("metrics");
    const room = await app.request("POST", "/rooms", { token: alice.token, json: { name: "metered" } });
    const topic = `room:${room.body.id as number}`;
    socket = new Socket(app.server.socketUrl, {
      transport: WebSocket,
      params: { token: alice.socketToken },
      timeout: WAIT_MS,
    } as ConstructorParameters<typeof Socket>[1]);
    socket.connect();
    const channel = socket.channel(topic, {});
    const state = nextEvent(channel, "presence_state");
    t.is((await join(channel)).status, "ok");
    await state;
    const broadcast = nextEvent(channel, "message:new");
    await new Promise<void>((resolve, reject) => {
      channel
        .push("message:new", { body: "counted" })
        .receive("ok", () => resolve())
        .receive("error", reject);
    });
    await within(WAIT_MS, "broadcast", broadcast);
    t.is(await metric("hypercast_realtime_sockets_open"), 1);
    t.is(await metric('hypercast_realtime_channel_joins_total{outcome="ok"}'), 1);
    t.is(await metric("hypercast_realtime_messages_in_total"), 1);
    t.true((await metric("hypercast_realtime_messages_out_total")) >= 3); // join reply, presence_state, push reply
    t.is(await metric("hypercast_realtime_fanout_deliveries_total"), 1);
    // The presence diff is coalesced over a short window: wait for it to be counted.
    for (let i = 0; i < 50 && (await metric("hypercast_realtime_presence_entries")) !== 1; i++)
      await new Promise((r) => setTimeout(r, 20));
    t.is(await metric("hypercast_realtime_presence_entries"), 1);
  } finally {
    socket?.disconnect();
    await app.stop();
  }
});
