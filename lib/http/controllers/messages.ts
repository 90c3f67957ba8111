/** A room's messages, newest first; posting one also broadcasts it on the room's topic. */
import type { Rooms } from "../../rooms/index.ts";
import { messageParams, messageView } from "../../../representations/messages.ts";
import { currentUser } from "../auth.ts";
import { type HttpContext, basePathOf, bodyOf } from "../context.ts";
import { pageParams } from "../pagination.ts";
import { idParam } from "../params.ts";
import { respond, respondCollection } from "../render.ts";

export function messagesController(rooms: Rooms) {
  return {
    async index(ctx: HttpContext) {
      const roomId = idParam(ctx, "id", "room");
      const params = pageParams(ctx);
      const page = await rooms.listMessages(currentUser(ctx).id, roomId, params);
      respondCollection(ctx, {
        rel: "messages",
        view: messageView,
        page,
        params,
        path: `/rooms/${roomId}/messages`,
        key: (m) => m.id,
      });
    },

    async show(ctx: HttpContext) {
      const message = await rooms.getMessage(
        currentUser(ctx).id,
        idParam(ctx, "id", "room"),
        idParam(ctx, "mid", "message"),
      );
      respond(ctx, 200, messageView, message);
    },

    async create(ctx: HttpContext) {
      const roomId = idParam(ctx, "id", "room");
      // The Idempotency-Key (checked by honorIdempotencyKeys) also guards the insert itself.
      const requestKey = ctx.get("Idempotency-Key") || undefined;
      const message = await rooms.createMessage(currentUser(ctx).id, roomId, messageParams.create(bodyOf(ctx)).body, {
        requestKey,
      });
      ctx.set("Location", `${basePathOf(ctx)}/rooms/${roomId}/messages/${message.id}`);
      respond(ctx, 201, messageView, message);
    },
  };
}
