import test from "ava";
import type { Message } from "../../lib/rooms/index.ts";
import { API_VERSIONS } from "../../lib/versions.ts";
import { messageParams, messageView } from "../../representations/messages.ts";
import { assertLinks, ISO_UTC } from "../helpers/api.ts";

const message: Message = {
  id: 42,
  roomId: 3,
  body: "hello, room",
  insertedAt: new Date("2026-05-06T07:08:09.123Z"),
  author: { id: 7, name: "Ada" },
};

for (const version of API_VERSIONS) {
  test(`messageView v${version}`, (t) => {
    const plain = messageView[version](message, { version, basePath: "", viewerId: 7 });
    const prefixed = messageView[version](message, { version, basePath: `/v${version}`, viewerId: 8 });
    t.snapshot(plain, "unprefixed");
    t.snapshot(prefixed, "under the URL prefix");
    assertLinks(t, plain, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
    t.regex(plain["inserted_at"] as string, ISO_UTC);
    t.deepEqual(
      plain,
      messageView[version](message, { version, basePath: "", viewerId: 8 }),
      "the same for every viewer",
    );
  });
}

test("message v1 names its author by user_id; v2 embeds {id, name}", (t) => {
  const v1 = messageView[1](message, { version: 1, basePath: "" });
  const v2 = messageView[2](message, { version: 2, basePath: "" });
  t.deepEqual(Object.keys(v1).sort(), ["_links", "body", "id", "inserted_at", "room_id", "user_id"]);
  t.deepEqual(Object.keys(v2).sort(), ["_links", "author", "body", "id", "inserted_at", "room_id"]);
  t.is(v1["user_id"], 7);
  t.deepEqual(v2["author"], { id: 7, name: "Ada" });
  t.is(v1["inserted_at"], "2026-05-06T07:08:09.123Z");
  t.is(v2["inserted_at"], "2026-05-06T07:08:09.123Z");
});

test("a timestamp with an offset is rendered in UTC", (t) => {
  const rendered = messageView[2](
    { ...message, insertedAt: new Date("2026-05-06T09:08:09.123+02:00") },
    { version: 2, basePath: "" },
  );
  t.is(rendered["inserted_at"], "2026-05-06T07:08:09.123Z");
});

test("messageParams: a new message's body", (t) => {
  t.deepEqual(messageParams.create({ body: "hello" }), { body: "hello" });
});
