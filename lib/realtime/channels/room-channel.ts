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
import type {
  Channel,
  ChannelContext,
  ChannelInfo,
  ChannelRoute,
  JoinResult,
  Payload,
  Reply,
  TerminateReason,
} from "../channel.ts";
import { SharedPayload } from "../serializer.ts";
import { presenceStream, type RefCount } from "../streams.ts";

export interface RoomChannelDeps {
  rooms: Pick<Rooms, "authorizeJoin" | "createMessage">;
  presence: Presence;
  /** Retained by each tracked socket: relays the topic's presence diffs to its presence stream. */
  presenceRelay: RefCount;
  schemas: ChannelSchemas;
}

const TOPIC = /^room:([1-9]\d{0,9})$/;
const JOINED: JoinResult = Object.freeze({ status: "ok" });

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

/** A remembered decision at once; otherwise the rooms context's answer, later. */
type Authorize = (userId: number, roomId: number) => JoinDecision | Promise<JoinDecision>;

export interface JoinAuthorizer {
  authorize: Authorize;
  /** Drops every remembered decision the ended access invalidates, and any decision in flight. */
  forget(ended: AccessEnded): void;
}

/** authorizeJoin with in-flight sharing per (user, room) and a short memory of `ok` decisions. */
export function createJoinAuthorizer(
  rooms: Pick<Rooms, "authorizeJoin">,
  ttlMs: number,
  now: () => number = () => performance.now(),
): JoinAuthorizer {
  const inFlight = new Map<string, Promise<JoinDecision>>();
  const granted = new Map<string, { decision: JoinDecision; until: number }>();
  // Bumped by every ended access: a query that started before it may have read the old rows.
  let generation = 0;

  function recall(key: string, t: number): JoinDecision | undefined {
    const hit = granted.get(key);
    if (hit === undefined) return undefined;
    if (hit.until > t) return hit.decision;
    granted.delete(key);
    return undefined;
  }

  function authorize(userId: number, roomId: number): JoinDecision | Promise<JoinDecision> {
    const t = now();
    const key = `${userId}:${roomId}`;
    // A public room admits everyone: one remembered decision serves every user.
    const remembered = recall(`*:${roomId}`, t) ?? recall(key, t);
    if (remembered !== undefined) return remembered;
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
  const shared: RoomShared = { deps, authorize: authorizer.authorize, states: createStateBatcher(deps.presence) };
  return {
    pattern: "room:*",
    create: (topic) => new RoomChannel(topic, shared),
    render: renderRoomBroadcast,
    forget: authorizer.forget,
  };
}

/** Only domain events with a wire event reach sockets; each is rendered as REST renders it. */
export function renderRoomBroadcast(
  message: PubSubMessage,
  version: ApiVersion,
): { event: string; payload: Payload } | undefined {
  if (message.event === "message.created")
    return { event: MESSAGE_NEW, payload: messageView[version](message.payload, { version, basePath: "" }) };
  return undefined;
}

/** A socket waiting for its `presence_state`: `deliver` is called with the encoded state, unless it left meanwhile. */
interface StateWaiter {
  deliver(state: SharedPayload): void;
}

type StateBatcher = (topic: string, waiter: StateWaiter) => void;

/**
 * The `presence_state` of a topic is read and JSON-encoded once for every socket whose tracking
 * landed in the same turn of the event loop, not once per socket: in a storm of N joins into one
 * room, reading and encoding a state of up to N metas per join made the storm cost O(N²) server
 * work. Each socket of a batch subscribes to the diffs only after the shared snapshot, as a
 * lone socket did, so state + later diffs stay consistent for each of them.
 */
function createStateBatcher(presence: Presence): StateBatcher {
  const waiting = new Map<string, StateWaiter[]>();
  function flush(topic: string): void {
    const batch = waiting.get(topic);
    waiting.delete(topic);
    if (batch === undefined) return;
    // A followed topic's snapshot falls back to this node's view; it does not reject.
    void presence.snapshot(topic).then(
      (state) => {
        const shared = new SharedPayload(JSON.stringify(state));
        for (const waiter of batch) waiter.deliver(shared);
      },
      () => {},
    );
  }
  return (topic, waiter) => {
    const batch = waiting.get(topic);
    if (batch !== undefined) return void batch.push(waiter);
    waiting.set(topic, [waiter]);
    setImmediate(flush, topic);
  };
}

interface RoomShared {
  deps: RoomChannelDeps;
  authorize: Authorize;
  states: StateBatcher;
}

// A class, not an object of closures: one lives per joined socket (benchmarks/NOTES.md, bench:ws).
class RoomChannel implements Channel, StateWaiter {
  private readonly roomId: number | undefined;
  private tracked = false;
  private audience = false;
  private ctx: ChannelContext | undefined;

  constructor(
    private readonly topic: string,
    private readonly shared: RoomShared,
  ) {
    const match = TOPIC.exec(topic);
    this.roomId = match === null ? undefined : Number(match[1]);
  }

  /** Decided at once when the authorisation is remembered (see createJoinAuthorizer). */
  join(payload: Payload, ctx: ChannelContext): JoinResult | Promise<JoinResult> {
    const { roomId } = this;
    if (roomId === undefined || !Number.isSafeInteger(roomId) || roomId > 2147483647)
      return { status: "error", response: { reason: "not_found" } };
    const errors = this.shared.deps.schemas.validate("room-join", payload);
    if (errors.length > 0) return { status: "error", response: { reason: "invalid", errors } };
    const decision = this.shared.authorize(ctx.socket.userId, roomId);
    return decision instanceof Promise
      ? decision.then((settled) => this.decided(settled, payload))
      : this.decided(decision, payload);
  }

  private decided(decision: JoinDecision, payload: Payload): JoinResult {
    if (!decision.ok) return { status: "error", response: { reason: decision.reason } };
    this.audience = payload["presence"] === false;
    return JOINED;
  }

  handleInfo(info: ChannelInfo, ctx: ChannelContext): void {
    if (info.event !== "after_join" || this.audience) return;
    const { deps } = this.shared;
    deps.presence.track(this.topic, ctx.socket.id, String(ctx.socket.userId), { online_at: new Date().toISOString() });
    this.tracked = true;
    this.ctx = ctx;
    // Retaining the relay makes this node listen to the topic's diffs (clustered: subscribe, then
    // read Redis); the snapshot waits for that, so the first joiner on a node sees the whole cluster.
    // The socket subscribes to the diffs only after the snapshot, which already holds what they carried.
    deps.presenceRelay.retain(this.topic);
    // Not awaited: the socket's next frames (heartbeats, pushes) are answered while the view syncs,
    // which takes a Redis round trip, or up to the presence core's sync timeout while Redis is away.
    // The snapshot is shared with the sockets tracked in the same turn (createStateBatcher).
    this.shared.states(this.topic, this);
  }

  deliver(state: SharedPayload): void {
    if (!this.tracked || this.ctx === undefined) return; // left while we waited (terminate released the relay)
    this.ctx.subscribe(presenceStream(this.topic));
    this.ctx.pushShared("presence_state", state);
  }

  async handleIn(event: string, payload: Payload, ctx: ChannelContext): Promise<Reply> {
    if (event !== MESSAGE_NEW) return { status: "error", response: { reason: "unknown_event" } };
    const { deps } = this.shared;
    const errors = deps.schemas.validate("message-new", payload);
    if (errors.length > 0) return { status: "error", response: { reason: "invalid", errors } };
    const message = await deps.rooms.createMessage(ctx.socket.userId, this.roomId!, payload["body"] as string);
    const version = ctx.socket.apiVersion;
    return {
      status: "ok",
      response: { message: messageView[version](message, { version, basePath: "", viewerId: ctx.socket.userId }) },
    };
  }

  terminate(_reason: TerminateReason, ctx: ChannelContext): void {
    if (!this.tracked) return;
    this.tracked = false;
    this.ctx = undefined;
    this.shared.deps.presence.untrack(this.topic, ctx.socket.id);
    this.shared.deps.presenceRelay.release(this.topic);
  }
}
