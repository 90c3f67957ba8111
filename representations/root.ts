/** The entry point, `GET /`: where every other resource can be found. */
import { link, type RenderContext, type Renderers } from "./render-context.ts";

export interface EntryPoint {
  socketUrl: string;
}

function root(entry: EntryPoint, ctx: RenderContext) {
  return {
    name: "Hypercast",
    version: ctx.version,
    _links: {
      self: link(ctx, "/"),
      users: link(ctx, "/users"),
      user: link(ctx, "/users/{id}", { templated: true }),
      sessions: link(ctx, "/sessions"),
      socket_tokens: link(ctx, "/socket-tokens"),
      rooms: link(ctx, "/rooms"),
      room: link(ctx, "/rooms/{id}", { templated: true }),
      socket: { href: entry.socketUrl, type: link(ctx, "/").type },
    },
  };
}

export const rootView = { 1: root, 2: root } satisfies Renderers<EntryPoint>;
