/**
 * Messages, per version. The realtime tier renders broadcasts with these same functions, so a
 * socket receives exactly what REST returns in its version.
 */
import type { Message } from "../lib/rooms/index.ts";
import { link, timestamp, type RenderContext, type Renderers } from "./render-context.ts";

function links(m: Message, ctx: RenderContext) {
  return {
    self: link(ctx, `/rooms/${m.roomId}/messages/${m.id}`),
    room: link(ctx, `/rooms/${m.roomId}`),
    author: link(ctx, `/users/${m.author.id}`),
  };
}

export const messageView = {
  1: (m, ctx) => ({
    id: m.id,
    room_id: m.roomId,
    user_id: m.author.id,
    body: m.body,
    inserted_at: timestamp(m.insertedAt),
    _links: links(m, ctx),
  }),
  2: (m, ctx) => ({
    id: m.id,
    room_id: m.roomId,
    body: m.body,
    inserted_at: timestamp(m.insertedAt),
    author: { id: m.author.id, name: m.author.name },
    _links: links(m, ctx),
  }),
} satisfies Renderers<Message>;

/** A new message's body (already validated by the schemas of both versions, which agree) as the rooms context takes it. */
export const messageParams = {
  create: (body: Record<string, unknown>): { body: string } => ({ body: body["body"] as string }),
};
