/** Rooms and memberships: the same shape in every version so far. */
import type { Membership, Room } from "../lib/rooms/index.ts";
import { link, type RenderContext, type Renderers } from "./render-context.ts";

function room(r: Room, ctx: RenderContext) {
  return {
    id: r.id,
    name: r.name,
    private: r.private,
    _links: {
      self: link(ctx, `/rooms/${r.id}`),
      messages: link(ctx, `/rooms/${r.id}/messages`),
      members: link(ctx, `/rooms/${r.id}/members`),
      presence: link(ctx, `/rooms/${r.id}/presence`),
    },
  };
}

function membership(m: Membership, ctx: RenderContext) {
  return {
    room_id: m.roomId,
    user_id: m.userId,
    _links: {
      self: link(ctx, `/rooms/${m.roomId}/members`),
      room: link(ctx, `/rooms/${m.roomId}`),
      user: link(ctx, `/users/${m.userId}`),
    },
  };
}

export const roomView = { 1: room, 2: room } satisfies Renderers<Room>;
export const membershipView = { 1: membership, 2: membership } satisfies Renderers<Membership>;

/** Request bodies (already validated by the schemas of both versions, which agree) as the rooms context takes them. */
export const roomParams = {
  create: (body: Record<string, unknown>): { name: string; private: boolean | undefined } => ({
    name: body["name"] as string,
    private: body["private"] as boolean | undefined,
  }),
  addMember: (body: Record<string, unknown>): { userId: number } => ({ userId: body["user_id"] as number }),
};
