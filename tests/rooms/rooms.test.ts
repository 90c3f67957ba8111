import test from "ava";
import type { User } from "../../lib/accounts/index.ts";
import { Forbidden, Invalid, NotFound } from "../../lib/errors.ts";
import type { PubSubMessage } from "../../lib/pubsub/index.ts";
import { MESSAGE_CREATED, roomTopic } from "../../lib/rooms/index.ts";
import { createTestDeps, type TestDeps } from "../helpers/deps.ts";

let deps: TestDeps;
let owner: User;
let member: User;
let outsider: User;
let seq = 0;

test.before(async () => {
  deps = await createTestDeps();
  const register = (name: string) =>
    deps.accounts.registerUser({
      name,
      email: `${name.toLowerCase()}-${++seq}@rooms.example.com`,
      password: "correct horse",
    });
  owner = await register("Owner");
  member = await register("Member");
  outsider = await register("Outsider");
});
test.after.always(async () => {
  await deps?.dispose();
});

async function privateRoom(name = "secret") {
  const room = await deps.rooms.createRoom(owner.id, { name, private: true });
  await deps.rooms.addMember(owner.id, room.id, member.id);
  return room;
}

test("createRoom: the creator owns the room and is its first member; rooms are public by default", async (t) => {
  const room = await deps.rooms.createRoom(owner.id, { name: "lobby" });
  t.like(room, { name: "lobby", private: false, ownerId: owner.id });
  t.true(Number.isSafeInteger(room.id));
  const members = await deps.rooms.listMembers(owner.id, room.id, { direction: "forward", limit: 10 });
  t.deepEqual(
    members.rows.map((m) => m.userId),
    [owner.id],
  );
});

test("getRoom: a public room is visible to anyone, a private room only to its members", async (t) => {
  const open = await deps.rooms.createRoom(owner.id, { name: "open" });
  t.is((await deps.rooms.getRoom(outsider.id, open.id)).id, open.id);
  const secret = await privateRoom();
  t.is((await deps.rooms.getRoom(owner.id, secret.id)).id, secret.id);
  t.is((await deps.rooms.getRoom(member.id, secret.id)).id, secret.id);
  const error = await t.throwsAsync(deps.rooms.getRoom(outsider.id, secret.id), { instanceOf: NotFound });
  t.is(error?.code, "not_found");
  await t.throwsAsync(deps.rooms.getRoom(owner.id, 999999), { instanceOf: NotFound });
});

test("listRooms: public rooms and the viewer's private rooms, never others' private rooms", async (t) => {
  const secret = await privateRoom("listed");
  const open = await deps.rooms.createRoom(outsider.id, { name: "outsider's open room" });
  const outsiders = await deps.rooms.createRoom(outsider.id, { name: "outsider's secret", private: true });
  const seenBy = async (user: User) =>
    (await deps.rooms.listRooms(user.id, { direction: "forward", limit: 100 })).rows.map((r) => r.id);
  const forMember = await seenBy(member);
  t.true(forMember.includes(secret.id) && forMember.includes(open.id));
  t.false(forMember.includes(outsiders.id));
  const forOutsider = await seenBy(outsider);
  t.false(forOutsider.includes(secret.id));
  t.true(forOutsider.includes(outsiders.id));
  t.deepEqual(
    [...forMember].sort((a, b) => a - b),
    forMember,
    "ascending id",
  );
});

test("addMember: owner only; the new member can see the private room; adding twice changes nothing", async (t) => {
  const secret = await privateRoom("club");
  await t.throwsAsync(deps.rooms.getRoom(outsider.id, secret.id), { instanceOf: NotFound });
  await t.throwsAsync(deps.rooms.addMember(member.id, secret.id, outsider.id), { instanceOf: Forbidden });
  await t.throwsAsync(
    deps.rooms.addMember(outsider.id, secret.id, outsider.id),
    { instanceOf: NotFound },
    "the room does not exist for outsiders",
  );
  const invalid = await t.throwsAsync(deps.rooms.addMember(owner.id, secret.id, 999999), { instanceOf: Invalid });
  t.deepEqual(
    invalid?.errors.map((e) => e.pointer),
    ["/user_id"],
  );

  const first = await deps.rooms.addMember(owner.id, secret.id, outsider.id);
  t.true(first.created);
  t.like(first.membership, { roomId: secret.id, userId: outsider.id });
  const second = await deps.rooms.addMember(owner.id, secret.id, outsider.id);
  t.false(second.created);
  t.deepEqual(second.membership, first.membership);
  t.is((await deps.rooms.getRoom(outsider.id, secret.id)).id, secret.id);
  t.true((await deps.rooms.authorizeJoin(outsider.id, secret.id)).ok);
});

test("listMembers: by ascending user id, pageable, hidden from outsiders of a private room", async (t) => {
  const secret = await privateRoom("members");
  const page = await deps.rooms.listMembers(member.id, secret.id, { direction: "forward", limit: 1 });
  t.deepEqual(
    page.rows.map((m) => m.userId),
    [owner.id],
  );
  t.true(page.more);
  const rest = await deps.rooms.listMembers(member.id, secret.id, { direction: "forward", from: owner.id, limit: 5 });
  t.deepEqual(
    rest.rows.map((m) => m.userId),
    [member.id],
  );
  t.false(rest.more);
  await t.throwsAsync(deps.rooms.listMembers(outsider.id, secret.id, { direction: "forward", limit: 5 }), {
    instanceOf: NotFound,
  });
});

test("createMessage publishes the message on the room's topic as the domain event message.created", async (t) => {
  const room = await deps.rooms.createRoom(owner.id, { name: "broadcast" });
  t.is(roomTopic(room.id), `room:${room.id}`);
  t.is(MESSAGE_CREATED, "message.created"); // the domain event; sockets see it as message:new (tests/realtime/channels.test.ts)
  const received: PubSubMessage[] = [];
  const elsewhere: PubSubMessage[] = [];
  const off = deps.pubsub.subscribe(`room:${room.id}`, (m) => received.push(m));
  const offElsewhere = deps.pubsub.subscribe(`room:${room.id + 100000}`, (m) => elsewhere.push(m));
  try {
    const message = await deps.rooms.createMessage(member.id, room.id, "hello");
    t.like(message, { roomId: room.id, body: "hello", author: { id: member.id, name: "Member" } });
    t.true(message.insertedAt instanceof Date);
    t.is(received.length, 1, "delivered once, before createMessage resolved");
    t.is(received[0]?.topic, `room:${room.id}`);
    t.is(received[0]?.event, "message.created");
    t.deepEqual(received[0]?.payload, message, "the payload is the domain message, not a rendering");
    t.deepEqual(elsewhere, []);
  } finally {
    off();
    offElsewhere();
  }
});

test("createMessage in a private room the author is not in fails and publishes nothing", async (t) => {
  const secret = await privateRoom("quiet");
  const received: PubSubMessage[] = [];
  const off = deps.pubsub.subscribe(roomTopic(secret.id), (m) => received.push(m));
  try {
    await t.throwsAsync(deps.rooms.createMessage(outsider.id, secret.id, "let me in"), { instanceOf: NotFound });
    t.deepEqual(received, []);
    t.is((await deps.db("messages").where({ room_id: secret.id })).length, 0);
  } finally {
    off();
  }
});

/**
 * The message inserts sent from now on whose bodies start with `prefix`: only one test's, since the
 * other tests of this file run at the same time on the same pool.
 */
function messageInserts(prefix: string): { statements: string[]; stop(): void } {
  const statements: string[] = [];
  const onQuery = (q: { sql: string; bindings?: unknown[] }) => {
    const ours = q.bindings?.some((b) => typeof b === "string" && b.startsWith(prefix)) ?? false;
    if (/insert into messages/i.test(q.sql) && ours) statements.push(q.sql);
  };
  deps.db.on("query", onQuery);
  return { statements, stop: () => deps.db.off("query", onQuery) };
}

test("messages written at once share one statement, keep their order, and an outsider's among them is refused alone", async (t) => {
  const secret = await privateRoom("group commit");
  const received: PubSubMessage[] = [];
  const off = deps.pubsub.subscribe(roomTopic(secret.id), (m) => received.push(m));
  const { statements, stop } = messageInserts("burst ");
  try {
    const authors = [owner, member, outsider, member, owner, member];
    const outcomes = await Promise.allSettled(
      authors.map((author, i) => deps.rooms.createMessage(author.id, secret.id, `burst ${i}`)),
    );
    t.is(statements.length, 1, "one insert for the whole burst");
    const refused = outcomes[2]!;
    t.is(refused.status, "rejected");
    t.true(refused.status === "rejected" && refused.reason instanceof NotFound);
    const stored = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    t.deepEqual(
      stored.map((m) => m.body),
      ["burst 0", "burst 1", "burst 3", "burst 4", "burst 5"],
    );
    const ids = stored.map((m) => m.id);
    t.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      "ids ascend in submission order",
    );
    t.deepEqual(
      received.map((m) => (m.payload as { id: number }).id),
      ids,
      "broadcast in the order stored",
    );
    t.deepEqual(
      stored.map((m) => m.author.name),
      ["Owner", "Member", "Member", "Owner", "Member"],
    );
    t.deepEqual(
      (await deps.db("messages").where({ room_id: secret.id }).orderBy("id")).map((r: { body: string }) => r.body),
      stored.map((m) => m.body),
    );
  } finally {
    stop();
    off();
  }
});

test("a burst past the named batch sizes (20 messages at once) is one statement too, in order, an outsider's refused alone", async (t) => {
  const room = await privateRoom("large burst");
  const { statements, stop } = messageInserts("large ");
  try {
    const authors = Array.from({ length: 20 }, (_, i) => (i === 7 ? outsider : i % 2 === 0 ? owner : member));
    const outcomes = await Promise.allSettled(
      authors.map((author, i) => deps.rooms.createMessage(author.id, room.id, `large ${i}`)),
    );
    t.is(statements.length, 1, "one insert for the whole burst");
    t.true(outcomes[7]!.status === "rejected" && outcomes[7]!.reason instanceof NotFound);
    const stored = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    t.deepEqual(
      stored.map((m) => m.body),
      authors.flatMap((_, i) => (i === 7 ? [] : [`large ${i}`])),
    );
    const ids = stored.map((m) => m.id);
    t.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
  } finally {
    stop();
  }
});

test("listMessages: newest first, forward and backward; getMessage only within its room", async (t) => {
  const room = await privateRoom("history");
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push((await deps.rooms.createMessage(owner.id, room.id, `m${i}`)).id);
  const newest = await deps.rooms.listMessages(member.id, room.id, { direction: "forward", limit: 2 });
  t.deepEqual(
    newest.rows.map((m) => m.id),
    [ids[4], ids[3]],
  );
  t.true(newest.more);
  const older = await deps.rooms.listMessages(member.id, room.id, { direction: "forward", from: ids[3], limit: 2 });
  t.deepEqual(
    older.rows.map((m) => m.id),
    [ids[2], ids[1]],
  );
  const back = await deps.rooms.listMessages(member.id, room.id, { direction: "backward", from: ids[2], limit: 5 });
  t.deepEqual(
    back.rows.map((m) => m.id),
    [ids[4], ids[3]],
    "backward pages keep newest-first order",
  );
  t.false(back.more);
  t.like(await deps.rooms.getMessage(member.id, room.id, ids[0]!), {
    id: ids[0],
    body: "m0",
    author: { id: owner.id, name: "Owner" },
  });

  const other = await deps.rooms.createRoom(owner.id, { name: "other" });
  await t.throwsAsync(deps.rooms.getMessage(owner.id, other.id, ids[0]!), { instanceOf: NotFound });
  await t.throwsAsync(deps.rooms.getMessage(outsider.id, room.id, ids[0]!), { instanceOf: NotFound });
  await t.throwsAsync(deps.rooms.listMessages(outsider.id, room.id, { direction: "forward", limit: 2 }), {
    instanceOf: NotFound,
  });
});

test("authorizeJoin says why a join is refused", async (t) => {
  const secret = await privateRoom("join");
  const open = await deps.rooms.createRoom(owner.id, { name: "join open" });
  t.deepEqual(await deps.rooms.authorizeJoin(outsider.id, 999999), { ok: false, reason: "not_found" });
  t.deepEqual(await deps.rooms.authorizeJoin(outsider.id, secret.id), { ok: false, reason: "unauthorized" });
  t.like(await deps.rooms.authorizeJoin(member.id, secret.id), { ok: true, room: { id: secret.id, private: true } });
  t.like(await deps.rooms.authorizeJoin(outsider.id, open.id), { ok: true, room: { id: open.id } });
});

test("deleting a user removes their memberships", async (t) => {
  const leaver = await deps.accounts.registerUser({
    name: "Leaver",
    email: `leaver-${++seq}@rooms.example.com`,
    password: "correct horse",
  });
  const secret = await privateRoom("left");
  await deps.rooms.addMember(owner.id, secret.id, leaver.id);
  await deps.accounts.deleteUser(leaver.id, leaver.id);
  const members = await deps.rooms.listMembers(owner.id, secret.id, { direction: "forward", limit: 10 });
  t.deepEqual(
    members.rows.map((m) => m.userId),
    [owner.id, member.id],
  );
});
