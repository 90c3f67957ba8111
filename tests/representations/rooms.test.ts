import test from "ava";
import type { Membership, Room } from "../../lib/rooms/index.ts";
import { API_VERSIONS } from "../../lib/versions.ts";
import { membershipView, roomParams, roomView } from "../../representations/rooms.ts";
import { assertLinks } from "../helpers/api.ts";

const room: Room = {
  id: 3,
  name: "lobby",
  private: true,
  ownerId: 7,
  insertedAt: new Date("2026-01-01T00:00:00.000Z"),
};
const membership: Membership = { roomId: 3, userId: 8, insertedAt: new Date("2026-01-02T00:00:00.000Z") };

for (const version of API_VERSIONS) {
  test(`roomView v${version}`, (t) => {
    const plain = roomView[version](room, { version, basePath: "", viewerId: 7 });
    const prefixed = roomView[version](room, { version, basePath: `/v${version}`, viewerId: 7 });
    t.snapshot(plain, "unprefixed");
    t.snapshot(prefixed, "under the URL prefix");
    assertLinks(t, plain, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
    t.deepEqual(
      Object.keys(plain).sort(),
      ["_links", "id", "name", "private"],
      "the owner stays private to the server",
    );
  });

  test(`membershipView v${version}`, (t) => {
    const plain = membershipView[version](membership, { version, basePath: "" });
    const prefixed = membershipView[version](membership, { version, basePath: `/v${version}` });
    t.snapshot(plain, "unprefixed");
    t.snapshot(prefixed, "under the URL prefix");
    assertLinks(t, plain, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
  });
}

test("roomParams: a new room's name and privacy (absent: the context's default), a new member's user id", (t) => {
  t.deepEqual(roomParams.create({ name: "lobby", private: true }), { name: "lobby", private: true });
  t.deepEqual(roomParams.create({ name: "lobby" }), { name: "lobby", private: undefined });
  t.deepEqual(roomParams.addMember({ user_id: 9 }), { userId: 9 });
});
