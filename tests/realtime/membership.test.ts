/**
 * Membership can end (README, Resources): `DELETE /rooms/{id}/members/{user_id}` and `DELETE
 * /rooms/{id}` over real HTTP, and what the sockets see: `phx_close {reason}` on the topic, a
 * presence leave for the others, nothing more from the room, and refused joins afterwards — even
 * within the room channel's one-second join-decision cache.
 */
import test from "ava";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { openRaw, type Frame, type RawClient } from "./raw.ts";

let app: TestServer;

test.before(async () => {
  app = await startTestServer();
});
test.after.always(async () => {
  await app?.stop();
});

const wsUrl = (token: string) => `${app.server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`;
type Account = Awaited<ReturnType<TestServer["signUp"]>>;

async function privateRoom(owner: Account, ...members: Account[]): Promise<number> {
  const room = await app.request("POST", "/rooms", { token: owner.token, json: { name: "secret", private: true } });
  for (const member of members) {
    const added = await app.request("POST", `/rooms/${room.body.id}/members`, {
      token: owner.token,
      json: { user_id: member.id },
    });
    if (added.status !== 201) throw new Error(`add member: ${added.status} ${added.text}`);
  }
  return room.body.id as number;
}

/** Joins over raw frames and waits for the reply (and presence_state when ok). */
async function joinRaw(client: RawClient, topic: string, ref: string): Promise<Frame> {
  client.sendFrame([ref, ref, topic, "phx_join", {}]);
  for (;;) {
    const frame = await client.next();
    if (frame[3] === "phx_reply" && frame[1] === ref) {
      if ((frame[4] as { status: string }).status === "ok") await client.nextEvent("presence_state");
      return frame;
    }
  }
}

/** Every frame up to the reply to a heartbeat sent now: what the socket received in between. */
async function framesUntilMarker(client: RawClient, ref: string): Promise<Frame[]> {
  client.sendFrame([null, ref, "phoenix", "heartbeat", {}]);
  const seen: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame[2] === "phoenix" && frame[1] === ref) return seen;
    seen.push(frame);
  }
}

// The watcher waits for a presence leave of the member. It used to wait forever under load: a join
// and a leave within one diff window cancelled out (the rule lib/presence/state.ts no longer has).
test("the owner removes a member: the member's socket gets phx_close {reason: removed}, leaves presence, hears nothing more, and cannot rejoin", async (t) => {
  const owner = await app.signUp("owner");
  const member = await app.signUp("member");
  const id = await privateRoom(owner, member);
  const topic = `room:${id}`;
  const watcher = await openRaw(wsUrl(owner.socketToken));
  const victim = await openRaw(wsUrl(member.socketToken));
  t.like(await joinRaw(watcher, topic, "1"), ["1", "1", topic, "phx_reply", { status: "ok" }]);
  t.like(await joinRaw(victim, topic, "1"), ["1", "1", topic, "phx_reply", { status: "ok" }]);
  // A leave and a rejoin within the join cache's second: the cache holds an `ok` for the member.
  victim.sendFrame(["1", "2", topic, "phx_leave", {}]);
  await victim.nextEvent("phx_reply");
  t.like(await joinRaw(victim, topic, "3"), ["3", "3", topic, "phx_reply", { status: "ok" }]);

  t.is((await app.request("DELETE", `/rooms/${id}/members/${member.id}`, { token: owner.token })).status, 204);
  const close = await victim.nextEvent("phx_close");
  t.deepEqual(close, ["3", "3", topic, "phx_close", { reason: "removed" }]);
  for (;;) {
    const diff = await watcher.nextEvent("presence_diff");
    if (String(member.id) in (diff[4] as { leaves: Record<string, unknown> }).leaves) break;
  }
  t.is(
    (await app.request("POST", `/rooms/${id}/messages`, { token: owner.token, json: { body: "after the removal" } }))
      .status,
    201,
  );
  await watcher.nextEvent("message:new");
  t.deepEqual(
    (await framesUntilMarker(victim, "m1")).filter((f) => f[2] === topic),
    [],
    "nothing more from the room",
  );
  t.like(
    await joinRaw(victim, topic, "4"),
    ["4", "4", topic, "phx_reply", { status: "error", response: { reason: "unauthorized" } }],
    "refused at once, cache or not",
  );
  victim.sendFrame(["5", "5", topic, "message:new", { body: "sneaky" }]);
  t.like(await victim.nextEvent("phx_reply"), [
    null,
    "5",
    topic,
    "phx_reply",
    { status: "error", response: { reason: "unmatched topic" } },
  ]);
  t.is((await app.request("GET", `/rooms/${id}`, { token: member.token })).status, 404);
  victim.close();
  watcher.close();
});

test("removal rules: a member may leave, the owner cannot be removed (422), anyone else gets 403, strangers 404", async (t) => {
  const owner = await app.signUp("owner");
  const [a, b, stranger] = [await app.signUp("a"), await app.signUp("b"), await app.signUp("stranger")];
  const id = await privateRoom(owner, a, b);
  t.is(
    (await app.request("DELETE", `/rooms/${id}/members/${b.id}`, { token: a.token })).status,
    403,
    "a member removing another",
  );
  const owned = await app.request("DELETE", `/rooms/${id}/members/${owner.id}`, { token: owner.token });
  t.is(owned.status, 422);
  t.is(owned.headers.get("content-type"), "application/problem+json");
  t.is(
    (await app.request("DELETE", `/rooms/${id}/members/${owner.id}`, { token: a.token })).status,
    403,
    "a member removing the owner",
  );
  t.is(
    (await app.request("DELETE", `/rooms/${id}/members/${a.id}`, { token: stranger.token })).status,
    404,
    "a private room is invisible to strangers",
  );
  t.is(
    (await app.request("DELETE", `/rooms/${id}/members/${a.id}`, { token: a.token })).status,
    204,
    "a member leaves",
  );
  t.is(
    (await app.request("DELETE", `/rooms/${id}/members/${a.id}`, { token: owner.token })).status,
    404,
    "already gone",
  );
  t.is((await app.request("DELETE", `/rooms/${id}`, { token: b.token })).status, 403, "only the owner deletes");
  t.is((await app.request("DELETE", `/rooms/${id}/members/${b.id}`)).status, 401);
});

test("a member removed from a PUBLIC room keeps reading it: no phx_close", async (t) => {
  const owner = await app.signUp("owner");
  const member = await app.signUp("member");
  const room = await app.request("POST", "/rooms", { token: owner.token, json: { name: "open" } });
  const id = room.body.id as number;
  await app.request("POST", `/rooms/${id}/members`, { token: owner.token, json: { user_id: member.id } });
  const reader = await openRaw(wsUrl(member.socketToken));
  t.like(await joinRaw(reader, `room:${id}`, "1"), ["1", "1", `room:${id}`, "phx_reply", { status: "ok" }]);
  t.is((await app.request("DELETE", `/rooms/${id}/members/${member.id}`, { token: owner.token })).status, 204);
  t.is(
    (await app.request("POST", `/rooms/${id}/messages`, { token: owner.token, json: { body: "still here" } })).status,
    201,
  );
  t.like(await reader.nextEvent("message:new"), [null, null, `room:${id}`, "message:new", { body: "still here" }]);
  reader.close();
});

test("DELETE /rooms/{id}: every socket in it gets phx_close {reason: deleted}; the room, its memberships and messages are gone", async (t) => {
  const owner = await app.signUp("owner");
  const member = await app.signUp("member");
  const id = await privateRoom(owner, member);
  const topic = `room:${id}`;
  await app.request("POST", `/rooms/${id}/messages`, { token: member.token, json: { body: "soon gone" } });
  const sockets = [
    await openRaw(wsUrl(owner.socketToken)),
    await openRaw(wsUrl(member.socketToken)),
    await openRaw(wsUrl(member.socketToken)),
  ];
  for (const socket of sockets)
    t.like(await joinRaw(socket, topic, "1"), ["1", "1", topic, "phx_reply", { status: "ok" }]);

  t.is((await app.request("DELETE", `/rooms/${id}`, { token: owner.token })).status, 204);
  for (const socket of sockets)
    t.deepEqual(await socket.nextEvent("phx_close"), ["1", "1", topic, "phx_close", { reason: "deleted" }]);
  t.is((await app.request("GET", `/rooms/${id}`, { token: owner.token })).status, 404);
  t.is(Number((await app.deps.db("messages").where({ room_id: id }).count({ n: "*" }))[0]?.n), 0);
  t.is(Number((await app.deps.db("memberships").where({ room_id: id }).count({ n: "*" }))[0]?.n), 0);
  t.like(await joinRaw(sockets[0]!, topic, "2"), [
    "2",
    "2",
    topic,
    "phx_reply",
    { status: "error", response: { reason: "not_found" } },
  ]);
  t.deepEqual(app.deps.presence.list(topic), {});
  for (const socket of sockets) {
    t.deepEqual(await framesUntilMarker(socket, "h"), [], "the socket itself lives on");
    socket.close();
  }
});
