/**
 * The route table: every HTTP action, its method and path, whether it needs a bearer token and
 * which request schema validates its body. One table, read by the router (and by anything that
 * documents the API), so routes are never written twice.
 */
import type { HttpContext } from "./context.ts";
import type { HttpDeps } from "./deps.ts";
import { messagesController } from "./controllers/messages.ts";
import { presenceController } from "./controllers/presence.ts";
import { roomsController } from "./controllers/rooms.ts";
import { rootController } from "./controllers/root.ts";
import { sessionsController } from "./controllers/sessions.ts";
import { usersController } from "./controllers/users.ts";
import type { HeaderName } from "./chain.ts";
import type { ProblemKind } from "./problems.ts";

export type Method = "get" | "post" | "patch" | "delete";

export interface Route {
  method: Method;
  path: string;
  /** A stable name, e.g. `users.show`. */
  name: string;
  auth: boolean;
  /** The schema (under schemas/v<N>/) that validates the request body. */
  body?: string;
  /**
   * What success answers: its statuses and, when there is a body, the representation (a schema
   * under schemas/responses/, which the OpenAPI documents use); `collection` names the
   * `_embedded` relation when the answer is a page of them.
   */
  returns: {
    status: readonly number[];
    view?: string;
    collection?: string;
    /** Headers the action itself sets on success (e.g. `Location` of what it created). */
    headers?: readonly HeaderName[];
    /** What a status means when "OK"/"Created" says too little. */
    descriptions?: Readonly<Partial<Record<number, string>>>;
  };
  /**
   * Outcomes of the action itself, besides those of the route's chain steps (route-steps.ts);
   * `rate_limited` where it checks or hashes a password (the password queue's per-address bound).
   */
  problems?: readonly ProblemKind[];
  /** The answer carries a credential: never kept for `Idempotency-Key` replays. */
  credentials?: true;
  /** Checks a password: failed attempts are rate limited per e-mail and per client address. */
  login?: true;
  /** Creates an account (hashes a password): limited per client address. */
  signUp?: true;
  action: (ctx: HttpContext) => Promise<void>;
}

export interface RouteOptions {
  /** The ws:// URL of the realtime endpoint, as clients should reach it. */
  socketUrl: (ctx: HttpContext) => string;
}

export function routes(deps: HttpDeps, options: RouteOptions): Route[] {
  const root = rootController(options.socketUrl);
  const users = usersController(deps.accounts);
  const sessions = sessionsController(deps.accounts, options.socketUrl);
  const rooms = roomsController(deps.rooms);
  const messages = messagesController(deps.rooms);
  const presence = presenceController(deps.rooms, deps.presence);
  return [
    {
      method: "get",
      path: "/",
      name: "root.show",
      auth: false,
      returns: { status: [200], view: "root" },
      action: root.show,
    },
    {
      method: "post",
      path: "/users",
      name: "users.create",
      auth: false,
      body: "users.create",
      returns: { status: [201], view: "user", headers: ["Location"] },
      problems: ["conflict", "rate_limited"],
      signUp: true,
      action: users.create,
    },
    {
      method: "get",
      path: "/users",
      name: "users.index",
      auth: true,
      returns: { status: [200], view: "user", collection: "users" },
      action: users.index,
    },
    {
      method: "get",
      path: "/users/:id",
      name: "users.show",
      auth: true,
      returns: { status: [200], view: "user" },
      action: users.show,
    },
    {
      method: "patch",
      path: "/users/:id",
      name: "users.update",
      auth: true,
      body: "users.update",
      returns: { status: [200], view: "user" },
      problems: ["forbidden", "rate_limited"],
      action: users.update,
    },
    {
      method: "delete",
      path: "/users/:id",
      name: "users.delete",
      auth: true,
      returns: { status: [204] },
      problems: ["forbidden"],
      action: users.remove,
    },
    {
      method: "post",
      path: "/sessions",
      name: "sessions.create",
      auth: false,
      body: "sessions.create",
      returns: { status: [201], view: "credentials" },
      problems: ["unauthorized", "rate_limited"],
      credentials: true,
      login: true,
      action: sessions.create,
    },
    {
      method: "delete",
      path: "/sessions",
      name: "sessions.delete",
      auth: true,
      returns: { status: [204] },
      action: sessions.remove,
    },
    {
      method: "post",
      path: "/socket-tokens",
      name: "socket_tokens.create",
      auth: true,
      returns: { status: [201], view: "credentials" },
      credentials: true,
      action: sessions.createSocketToken,
    },
    {
      method: "post",
      path: "/rooms",
      name: "rooms.create",
      auth: true,
      body: "rooms.create",
      returns: { status: [201], view: "room", headers: ["Location"] },
      action: rooms.create,
    },
    {
      method: "get",
      path: "/rooms",
      name: "rooms.index",
      auth: true,
      returns: { status: [200], view: "room", collection: "rooms" },
      action: rooms.index,
    },
    {
      method: "get",
      path: "/rooms/:id",
      name: "rooms.show",
      auth: true,
      returns: { status: [200], view: "room" },
      action: rooms.show,
    },
    {
      method: "delete",
      path: "/rooms/:id",
      name: "rooms.delete",
      auth: true,
      returns: { status: [204] },
      problems: ["forbidden"],
      action: rooms.remove,
    },
    {
      method: "post",
      path: "/rooms/:id/members",
      name: "members.create",
      auth: true,
      body: "members.create",
      returns: {
        status: [201, 200],
        view: "membership",
        descriptions: { 201: "Created: the user is now a member", 200: "OK: the user already was a member" },
      },
      problems: ["forbidden"],
      action: rooms.addMember,
    },
    {
      method: "delete",
      path: "/rooms/:id/members/:user_id",
      name: "members.delete",
      auth: true,
      returns: { status: [204] },
      problems: ["forbidden", "validation_failed"],
      action: rooms.removeMember,
    },
    {
      method: "get",
      path: "/rooms/:id/members",
      name: "members.index",
      auth: true,
      returns: { status: [200], view: "membership", collection: "members" },
      action: rooms.members,
    },
    {
      method: "get",
      path: "/rooms/:id/messages",
      name: "messages.index",
      auth: true,
      returns: { status: [200], view: "message", collection: "messages" },
      action: messages.index,
    },
    {
      method: "get",
      path: "/rooms/:id/messages/:mid",
      name: "messages.show",
      auth: true,
      returns: { status: [200], view: "message" },
      action: messages.show,
    },
    {
      method: "post",
      path: "/rooms/:id/messages",
      name: "messages.create",
      auth: true,
      body: "messages.create",
      returns: { status: [201], view: "message", headers: ["Location"] },
      action: messages.create,
    },
    {
      method: "get",
      path: "/rooms/:id/presence",
      name: "presence.show",
      auth: true,
      returns: { status: [200], view: "presence" },
      action: presence.show,
    },
  ];
}
