/**
 * RoomChannel: the `room:{id}` topics.
 *
 * - join: the rooms context decides (`not_found`, `unauthorized`); `{"presence": false}` joins as
 *   audience — not tracked, no `presence_state`, no `presence_diff`.
 * - after join: track the socket (key = user id as a string, one meta per socket), wait for the
 *   cluster-wide snapshot, subscribe it to the topic's presence stream, push `presence_state`.
 * - `message:new {body}`: validated against schemas/channels/message-new.json, persisted through
 *   the rooms context (which publishes it on PubSub), answered with the message in this socket's
 *   API version. Every subscriber then receives the broadcast rendered for its own version.
 *
 *     roomRoute({ rooms, presence, schemas }) // → a ChannelRoute for "room:*"
 */
import { messageView } from "../../../representations/messages.ts";
import type { Presence } from "../../presence/index.ts";
import type { PubSubMessage } from "../../pubsub/index.ts";
import type { AccessEnded, JoinDecision, Rooms } from "../../rooms/index.ts";
import type { ChannelSchemas } from "../../schemas.ts";
import type { ApiVersion } from "../../versions.ts";
import type { Channel, ChannelRoute, Payload } from "../channel.ts";
import { presenceStream, type RefCount } from "../streams.ts";

export interface RoomChannelDeps {
  rooms: Pick<Rooms, "authorizeJoin" | "createMessage">;
  presence: Presence;
  /** Retained by each tracked socket: relays the topic's presence diffs to its presence stream. */
  presenceRelay: RefCount;
  schemas: ChannelSchemas;
}

const TOPIC = /^room:([1-9]\d{0,9})$/;

/** The wire event of a new message, both ways: what a client pushes, and how `message.created` reaches sockets. */
export const MESSAGE_NEW = "message:new";

/**
 * How long an `ok` join decision is reused. A join storm (10,000 sockets joining one room) then
 * costs a handful of queries instead of one each — on the embedded PGlite a query runs
 * synchronously on the event loop, so this is the difference between seconds and a minute.
 * Access can end (member removal, room deletion): the rooms context announces it on every node
 * and `forget` drops the matching decisions at once, so a removed member's next join is refused.
 * Refusals are never cached, so a new member can join at once.
 */
export const JOIN_DECISION_TTL_MS = 1000;

type Authorize = (userId: number, roomId: number) => Promise<JoinDecision>;

export interface JoinAuthorizer {
  authorize: Authorize;
  /** Drops every remembered decision the ended access invalidates, and any decision in flight. */
  forget(ended: AccessEnded): void;
}

/** authorizeJoin with in-flight sharing per (user, room) and a short memory of `ok` decisions. */
export function createJoinAuthorizer(rooms: Pick<Rooms, "authorizeJoin">, ttlMs: number, now: () => number = () => performance.now()): JoinAuthorizer {
  const inFlight = new Map<string, Promise<JoinDecision>>();
  const granted = new Map<string, { decision: JoinDecision; until: number }>();
  // Bumped by every ended access: a query that started before it may have read the old rows.
  let generation = 0;

  function authorize(userId: number, roomId: number): Promise<JoinDecision> {
    const t = now();
    // A public room admits everyone: one remembered decision serves every user.
    for (const key of [`*:${roomId}`, `${userId}:${roomId}`]) {
      const hit = granted.get(key);
      if (hit !== undefined && hit.until > t) return Promise.resolve(hit.decision);
      if (hit !== undefined) granted.delete(key);
    }
    const key = `${userId}:${roomId}`;
    let pending = inFlight.get(key);
    if (pending === undefined) {
      const started = generation;
      const query: Promise<JoinDecision> = rooms.authorizeJoin(userId, roomId).then((decision) => {
        if (inFlight.get(key) === query) inFlight.delete(key);
        // Access ended while we asked: ask again, the answer may be stale (never cached).
        if (generation !== started) return rooms.authorizeJoin(userId, roomId);
        if (decision.ok) granted.set(decision.room.private ? key : `*:${roomId}`, { decision, until: now() + ttlMs });
        if (granted.size > 10_000) granted.clear(); // bounded memory; a miss only costs a query
        return decision;
      });
      query.catch(() => {
        if (inFlight.get(key) === query) inFlight.delete(key);
      });
      pending = query;
      inFlight.set(key, pending);
    }
    return pending;
  }

  return {
    authorize,
    forget(ended) {
      generation++;
      granted.delete(`*:${ended.roomId}`);
      if (ended.userId !== null) granted.delete(`${ended.userId}:${ended.roomId}`);
      else for (const key of granted.keys()) if (key.endsWith(`:${ended.roomId}`)) granted.delete(key);
      // New joins must not share a query that may predate the change.
      inFlight.clear();
    },
  };
}

export interface RoomRoute extends ChannelRoute {
  /** Forget cached join decisions an ended access invalidates (called on every node). */
  forget(ended: AccessEnded): void;
}

export function roomRoute(deps: RoomChannelDeps): RoomRoute {
  const authorizer = createJoinAuthorizer(deps.rooms, JOIN_DECISION_TTL_MS);
  return {
    pattern: "room:*",
    create: (topic) => createRoomChannel(topic, deps, authorizer.authorize),
    render: renderRoomBroadcast,
    forget: authorizer.forget,
  };
}

/** Only domain events with a wire event reach sockets; each is rendered as REST renders it. */
export function renderRoomBroadcast(message: PubSubMessage, version: ApiVersion): { event: string; payload: Payload } | undefined {
  if (message.event === "message.created") return { event: MESSAGE_NEW, payload: messageView[version](message.payload, { version, basePath: "" }) };
  return undefined;
}

function createRoomChannel(topic: string, deps: RoomChannelDeps, authorizeJoin: Authorize): Channel {
  const match = TOPIC.exec(topic);
  const roomId = match === null ? undefined : Number(match[1]);
  let tracked = false;
  let audience = false;

  return {
    async join(payload, ctx) {
      if (roomId === undefined || !Number.isSafeInteger(roomId) || roomId > 2147483647) return { status: "error", response: { reason: "not_found" } };
      const errors = deps.schemas.validate("room-join", payload);
      if (errors.length > 0) return { status: "error", response: { reason: "invalid", errors } };
      const decision = await authorizeJoin(ctx.socket.userId, roomId);
      if (!decision.ok) return { status: "error", response: { reason: decision.reason } };
      audience = payload["presence"] === false;
      return { status: "ok" };
    },

    async handleInfo(info, ctx) {
      if (info.event !== "after_join" || audience) return;
      deps.presence.track(topic, ctx.socket.id, String(ctx.socket.userId), { online_at: new Date().toISOString() });
      tracked = true;
      // Retaining the relay makes this node listen to the topic's diffs (clustered: subscribe, then
      // read Redis); the snapshot waits for that, so the first joiner on a node sees the whole cluster.
      // The socket subscribes to the diffs only after the snapshot, which already holds what they carried.
      deps.presenceRelay.retain(topic);
      // Not awaited: the socket's next frames (heartbeats, pushes) are answered while the view syncs,
      // which takes a Redis round trip, or up to the presence core's sync timeout while Redis is away.
      void deps.presence.snapshot(topic).then(
        (state) => {
          if (!tracked) return; // left while we waited (terminate released the relay)
          ctx.subscribe(presenceStream(topic));
          ctx.push("presence_state", state);
        },
        () => {}, // a followed topic's snapshot falls back to this node's view; it does not reject
      );
    },

    async handleIn(event, payload, ctx) {
      if (event !== MESSAGE_NEW) return { status: "error", response: { reason: "unknown_event" } };
      const errors = deps.schemas.validate("message-new", payload);
      if (errors.length > 0) return { status: "error", response: { reason: "invalid", errors } };
      const message = await deps.rooms.createMessage(ctx.socket.userId, roomId!, payload["body"] as string);
      const version = ctx.socket.apiVersion;
      return { status: "ok", response: { message: messageView[version](message, { version, basePath: "", viewerId: ctx.socket.userId }) } };
    },

    terminate(_reason, ctx) {
      if (!tracked) return;
      tracked = false;
      deps.presence.untrack(topic, ctx.socket.id);
      deps.presenceRelay.release(topic);
    },
  };
}
