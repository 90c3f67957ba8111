/**
 * A room's presence over REST: the same `{<user id>: {metas: [...]}}` shape a channel's
 * `presence_state` push carries, so clients can share one parser.
 */
import type { Presences } from "../lib/presence/index.ts";
import { link, type RenderContext, type Renderers } from "./render-context.ts";

export interface RoomPresence {
  roomId: number;
  presences: Presences;
}

function presence(p: RoomPresence, ctx: RenderContext) {
  return {
    presences: p.presences,
    _links: { self: link(ctx, `/rooms/${p.roomId}/presence`), room: link(ctx, `/rooms/${p.roomId}`) },
  };
}

export const presenceView = { 1: presence, 2: presence } satisfies Renderers<RoomPresence>;
