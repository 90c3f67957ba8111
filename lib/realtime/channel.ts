/**
 * The Channel behaviour: what a channel module implements to serve a family of topics. The
 * engine (socket.ts) owns the protocol — refs, join_refs, ordering, limits, cleanup, as
 * docs/channels-protocol.md §3–4 describes — and calls these hooks; a channel only decides and answers.
 *
 *     const echo: ChannelRoute = {
 *       pattern: "echo:*",
 *       create: () => ({
 *         async join() { return { status: "ok" } },
 *         async handleIn(event, payload) { return { status: "ok", response: payload } },
 *         handleInfo() {},
 *         terminate() {},
 *       }),
 *     }
 *
 * Contract:
 * - `join` decides; side effects (presence tracking, pushes) belong in `handleInfo("after_join")`,
 *   which the engine calls right after the join reply, so the reply is always the first frame. A
 *   decision returned as it is, not as a promise, is answered in the same turn: a join storm then
 *   costs no promise and no later turn of the loop per join.
 * - `handleIn` returns the reply, or undefined for none. A thrown `DomainError` becomes an error
 *   reply `{reason: code, errors?}`; anything else is a crash: the client gets `phx_error` with
 *   the channel's join_ref, the channel is terminated and the client rejoins.
 * - `terminate` runs exactly once per successful join, whatever ends it (leave, rejoin, socket
 *   close, crash, shutdown). It must be synchronous and must not throw.
 */
import type { PubSubMessage } from "../pubsub/index.ts";
import type { ApiVersion } from "../versions.ts";
import type { Payload, SharedPayload } from "./serializer.ts";

export type { Payload } from "./serializer.ts";

export interface SocketInfo {
  /** Unique per connection (and per process start); presence uses it as the owner. */
  readonly id: string;
  readonly userId: number;
  /** The session the socket token was minted under (revoking it closes the socket with 4401). */
  readonly sessionId: number;
  readonly apiVersion: ApiVersion;
}

export interface ChannelContext {
  readonly topic: string;
  readonly joinRef: string;
  readonly socket: SocketInfo;
  /** Sends an event to this client only (with this channel's join_ref). */
  push(event: string, payload: Payload): void;
  /** As `push`, with the payload already encoded: one encoding shared by many sockets (a presence_state). */
  pushShared(event: string, payload: SharedPayload): void;
  /** Subscribes this client to a fan-out stream until the channel ends (see streams.ts). */
  subscribe(stream: string): void;
}

export type JoinResult = { status: "ok"; response?: Payload } | { status: "error"; response: Payload };
export interface Reply {
  status: "ok" | "error";
  response: Payload;
}
export type ChannelInfo = { event: "after_join" };
/** `evicted`: the server ended the channel because the socket may no longer read the topic. */
export type TerminateReason = "leave" | "rejoin" | "closed" | "crash" | "shutdown" | "evicted";

export interface Channel {
  /** Decided at once (a result) or later (a promise of one). */
  join(payload: Payload, ctx: ChannelContext): JoinResult | Promise<JoinResult>;
  handleIn(event: string, payload: Payload, ctx: ChannelContext): Promise<Reply | undefined>;
  handleInfo(info: ChannelInfo, ctx: ChannelContext): void | Promise<void>;
  terminate(reason: TerminateReason, ctx: ChannelContext): void;
}

/**
 * Renders a PubSub message (a domain event, lib/pubsub/events.ts) for subscribers of one API
 * version: the event sockets see (`message.created` → `message:new`) and its payload; undefined to not deliver it.
 */
export type BroadcastRenderer = (
  message: PubSubMessage,
  version: ApiVersion,
) => { event: string; payload: Payload } | undefined;

export interface ChannelRoute {
  /** `"room:*"` matches every topic starting with `room:`; without `*` the topic must be equal. */
  pattern: string;
  /** A fresh channel for one (socket, topic) join. */
  create(topic: string): Channel;
  /** How PubSub broadcasts on these topics reach sockets; without it nothing is relayed. */
  render?: BroadcastRenderer;
}

/** The first route whose pattern matches the topic. */
export function findRoute(routes: readonly ChannelRoute[], topic: string): ChannelRoute | undefined {
  return routes.find((route) =>
    route.pattern.endsWith("*") ? topic.startsWith(route.pattern.slice(0, -1)) : topic === route.pattern,
  );
}
