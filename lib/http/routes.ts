/**
 * The route table: every HTTP action, its method and path, whether it needs a bearer token and
 * which request schema validates its body. One table, read by the router (and by anything that
 * documents the API), so routes are never written twice.
 */
import type { Deps } from "../deps.ts";
import type { HttpContext } from "./context.ts";
import { messagesController } from "./controllers/messages.ts";
import { presenceController } from "./controllers/presence.ts";
import { roomsController } from "./controllers/rooms.ts";
import { rootController } from "./controllers/root.ts";
import { sessionsController } from "./controllers/sessions.ts";
import { usersController } from "./controllers/users.ts";

export type Method = "get" | "post" | "patch" | "delete";

export interface Route {
  method: Method;
  path: string;
  /** A stable name, e.g. `users.show`. */
  name: string;
  auth: boolean;
  /** The schema (under schemas/v<N>/) that validates the request body. */
  body?: string;
  action: (ctx: HttpContext) => Promise<void>;
}

export interface RouteOptions {
  /** The ws:// URL of the realtime endpoint, as clients should reach it. */
  socketUrl: (ctx: HttpContext) => string;
}

export function routes(deps: Deps, options: RouteOptions): Route[] {
  const root = rootController(options.socketUrl);
  const users = usersController(deps.accounts);
  const sessions = sessionsController(deps.accounts, options.socketUrl);
  const rooms = roomsController(deps.rooms);
  const messages = messagesController(deps.rooms);
  const presence = presenceController(deps.rooms, deps.presence);
  return [
    { method: "get", path: "/", name: "root.show", auth: false, action: root.show },
    { method: "post", path: "/users", name: "users.create", auth: false, body: "users.create", action: users.create },
    { method: "get", path: "/users", name: "users.index", auth: true, action: users.index },
    { method: "get", path: "/users/:id", name: "users.show", auth: true, action: users.show },
    { method: "patch", path: "/users/:id", name: "users.update", auth: true, body: "users.update", action: users.update },
    { method: "delete", path: "/users/:id", name: "users.delete", auth: true, action: users.remove },
    { method: "post", path: "/sessions", name: "sessions.create", auth: false, body: "sessions.create", action: sessions.create },
    { method: "delete", path: "/sessions", name: "sessions.delete", auth: true, action: sessions.remove },
    { method: "post", path: "/socket-tokens", name: "socket_tokens.create", auth: true, action: sessions.createSocketToken },
    { method: "post", path: "/rooms", name: "rooms.create", auth: true, body: "rooms.create", action: rooms.create },
    { method: "get", path: "/rooms", name: "rooms.index", auth: true, action: rooms.index },
    { method: "get", path: "/rooms/:id", name: "rooms.show", auth: true, action: rooms.show },
    { method: "post", path: "/rooms/:id/members", name: "members.create", auth: true, body: "members.create", action: rooms.addMember },
    { method: "get", path: "/rooms/:id/members", name: "members.index", auth: true, action: rooms.members },
    { method: "get", path: "/rooms/:id/messages", name: "messages.index", auth: true, action: messages.index },
    { method: "get", path: "/rooms/:id/messages/:mid", name: "messages.show", auth: true, action: messages.show },
    { method: "post", path: "/rooms/:id/messages", name: "messages.create", auth: true, body: "messages.create", action: messages.create },
    { method: "get", path: "/rooms/:id/presence", name: "presence.show", auth: true, action: presence.show },
  ];
}
