/** Rooms and their members. */
import type { Rooms } from "../../rooms/index.ts";
import { membershipView, roomParams, roomView } from "../../../representations/rooms.ts";
import { currentUser } from "../auth.ts";
import { type HttpContext, basePathOf, bodyOf } from "../context.ts";
import { pageParams } from "../pagination.ts";
import { idParam } from "../params.ts";
import { respond, respondCollection } from "../render.ts";

export function roomsController(rooms: Rooms) {
  return {
    async create(ctx: HttpContext) {
      const room = await rooms.createRoom(currentUser(ctx).id, roomParams.create(bodyOf(ctx)));
      ctx.set("Location", `${basePathOf(ctx)}/rooms/${room.id}`);
      respond(ctx, 201, roomView, room);
    },

    async index(ctx: HttpContext) {
      const params = pageParams(ctx);
      const page = await rooms.listRooms(currentUser(ctx).id, params);
      respondCollection(ctx, { rel: "rooms", view: roomView, page, params, path: "/rooms", key: (r) => r.id });
    },

    async show(ctx: HttpContext) {
      respond(ctx, 200, roomView, await rooms.getRoom(currentUser(ctx).id, idParam(ctx, "id", "room")));
    },

    async addMember(ctx: HttpContext) {
      const roomId = idParam(ctx, "id", "room");
      const { userId } = roomParams.addMember(bodyOf(ctx));
      const { membership, created } = await rooms.addMember(currentUser(ctx).id, roomId, userId);
      respond(ctx, created ? 201 : 200, membershipView, membership);
    },

    async remove(ctx: HttpContext) {
      await rooms.deleteRoom(currentUser(ctx).id, idParam(ctx, "id", "room"));
      ctx.status = 204;
    },

    async removeMember(ctx: HttpContext) {
      await rooms.removeMember(currentUser(ctx).id, idParam(ctx, "id", "room"), idParam(ctx, "user_id", "membership"));
      ctx.status = 204;
    },

    async members(ctx: HttpContext) {
      const roomId = idParam(ctx, "id", "room");
      const params = pageParams(ctx);
      const page = await rooms.listMembers(currentUser(ctx).id, roomId, params);
      respondCollection(ctx, {
        rel: "members",
        view: membershipView,
        page,
        params,
        path: `/rooms/${roomId}/members`,
        key: (m) => m.userId,
      });
    },
  };
}
