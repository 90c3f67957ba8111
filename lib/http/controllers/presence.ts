/** Who is in a room right now, cluster-wide (every node's tracked sockets), as the realtime tier tracks it. */
import type { Presence } from "../../presence/index.ts";
import { roomTopic, type Rooms } from "../../rooms/index.ts";
import { presenceView } from "../../../representations/presence.ts";
import { currentUser } from "../auth.ts";
import type { HttpContext } from "../context.ts";
import { idParam } from "../params.ts";
import { respond } from "../render.ts";

export function presenceController(rooms: Rooms, presence: Presence) {
  return {
    async show(ctx: HttpContext) {
      const room = await rooms.getRoom(currentUser(ctx).id, idParam(ctx, "id", "room"));
      const presences = await presence.snapshot(roomTopic(room.id));
      respond(ctx, 200, presenceView, { roomId: room.id, presences });
    },
  };
}
