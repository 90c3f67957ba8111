import test from "ava";
import { API_VERSIONS } from "../../lib/versions.ts";
import { presenceView, type RoomPresence } from "../../representations/presence.ts";
import { assertLinks } from "../helpers/api.ts";

const present: RoomPresence = {
  roomId: 3,
  presences: {
    "7": {
      metas: [
        { phx_ref: "ref-1", online_at: "2026-01-01T00:00:00.000Z" },
        { phx_ref: "ref-2", online_at: "2026-01-01T00:01:00.000Z" },
      ],
    },
    "8": { metas: [{ phx_ref: "ref-3", online_at: "2026-01-01T00:02:00.000Z" }] },
  },
};

for (const version of API_VERSIONS) {
  test(`presenceView v${version}`, (t) => {
    const plain = presenceView[version](present, { version, basePath: "", viewerId: 7 });
    const prefixed = presenceView[version](
      { roomId: 3, presences: {} },
      { version, basePath: `/v${version}`, viewerId: 7 },
    );
    t.snapshot(plain, "two users, one on two devices");
    t.snapshot(prefixed, "nobody, under the URL prefix");
    assertLinks(t, plain, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
    t.deepEqual(plain["presences"], present.presences, "the presence_state shape, unchanged");
  });
}
