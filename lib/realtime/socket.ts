/**
 * The socket engine (private): one per WebSocket connection. It owns the Phoenix protocol state —
 * topic → {join_ref, channel} — and its rules:
 *
 * - inbound frames are handled in arrival order, and replies, pushes and broadcasts keep
 *   per-connection FIFO order. Consecutive channel events (`handleIn`, e.g. a burst of
 *   `message:new`) are pipelined: each starts without waiting for the previous one's answer, so
 *   the rooms context can store them in one statement (group commit), and their replies still go
 *   out in arrival order. Anything else (join, leave, heartbeat) waits until the events before it
 *   are answered. An event in service when its channel ends gets no reply;
 * - heartbeat on `phoenix` is answered without a join; the join reply precedes every push and
 *   broadcast of its topic; refs are echoed as the strings they came as;
 * - a stale join_ref is ignored; a duplicate join replaces the old channel and sends `phx_close`
 *   with the OLD join_ref after the new join's reply; "unmatched topic" replies carry join_ref null;
 * - limits: frame size, rate (token bucket; more than `flood.limit` refusals within
 *   `flood.windowMs` closes with 4429), channels per socket, events waiting (queued, or in service
 *   beyond the first). A refusal
 *   reads only the frame's first characters (`peekAddress`): refusing costs next to nothing;
 * - a push or join that finds the database unreachable is answered `{reason: "unavailable"}`
 *   and the socket lives on;
 * - `evict(topic, reason)` ends a channel from the server side (access ended): `phx_close
 *   {reason}`, presence left, nothing more from that topic;
 * - when the connection closes, every channel is terminated (streams, presence, PubSub refs).
 */
import type { Logger } from "pino";
import { isDatabaseUnavailable } from "../db/errors.ts";
import { DomainError } from "../errors.ts";
import type { Telemetry } from "../telemetry/index.ts";
import { findRoute, type Channel, type ChannelContext, type ChannelRoute, type Reply, type SocketInfo, type TerminateReason } from "./channel.ts";
import { CLOSE } from "./close-codes.ts";
import { createBucket, createRefusalWindow, refuse, take, type Bucket, type FloodLimit, type RateLimit } from "./rate-limit.ts";
import { decode, encode, encodeReply, encodeWithJson, peekAddress, type InboundMessage, type Payload, type Ref } from "./serializer.ts";
import { versionStream, type RefCount } from "./streams.ts";
import type { Connection, ConnectionHandler } from "./transport.ts";

export interface SocketLimits {
  maxFrameBytes: number;
  maxChannels: number;
  rate: RateLimit;
  flood: FloodLimit;
  /**
   * Events that may wait behind the one being served (e.g. on a slow database); more are refused as
   * `rate_limited` and count as refusals, so one socket cannot queue unbounded work or memory.
   */
  maxQueued: number;
}

export interface EngineServices {
  routes: readonly ChannelRoute[];
  /** Retained per joined topic: keeps the topic's PubSub → stream relay alive. */
  broadcasts: RefCount;
  limits: SocketLimits;
  logger: Logger;
  telemetry: Telemetry;
}

interface Joined {
  joinRef: string;
  channel: Channel;
  ctx: ChannelContext;
  streams: Set<string>;
}

export interface SocketEngine extends ConnectionHandler {
  readonly info: SocketInfo;
  /** Terminates every channel for a shutdown, keeping stream subscriptions so pending presence diffs still arrive. */
  stop(): void;
  /** Ends the channel on `topic`, if joined, telling the client `phx_close {reason}`. */
  evict(topic: string, reason: string): void;
  /** Closes the connection (no-op once closed). */
  close(code: number, reason: string): void;
}

export function createSocketEngine(connection: Connection, socket: SocketInfo, services: EngineServices): SocketEngine {
  const { limits, logger, telemetry } = services;
  const channels = new Map<string, Joined>();
  const queue: InboundMessage[] = [];
  const bucket: Bucket = createBucket(limits.rate.burst, performance.now());
  const refusals = createRefusalWindow(limits.flood);
  let running = false;
  let closed = false;
  /** Pipelined channel events not yet answered, and the answer the next one must wait for. */
  let inService = 0;
  let answered: Promise<void> = Promise.resolve();

  const send = (frame: string): void => {
    connection.send(frame);
  };
  const reply = (joinRef: Ref, ref: Ref, topic: string, status: string, response: Payload): void => {
    if (ref === null) return;
    send(encodeReply(joinRef, ref, topic, status, response));
    telemetry.emit("channel.message.out", { count: 1 }, { topic, event: "phx_reply" });
  };

  function message(text: string | null, bytes: number): void {
    if (closed) return;
    if (bytes > limits.maxFrameBytes) return connection.close(CLOSE.MESSAGE_TOO_BIG, "frame over 64 KiB");
    if (text === null) return connection.close(CLOSE.UNSUPPORTED_DATA, "binary frames are not supported");
    const now = performance.now();
    if (!take(bucket, now, limits.rate)) return refused(text, now);
    const decoded = decode(text);
    if (!decoded.ok) {
      if (decoded.replyTo === undefined) return connection.close(CLOSE.MALFORMED, truncate(decoded.detail));
      const { joinRef, ref, topic } = decoded.replyTo;
      return reply(joinRef, ref, topic, "error", { reason: "malformed", detail: decoded.detail });
    }
    const m = decoded.message;
    // Heartbeats are never refused for a full queue: refusing them would make the client reconnect.
    const waiting = queue.length + Math.max(0, inService - 1);
    if (waiting >= limits.maxQueued && !(m.topic === "phoenix" && m.event === "heartbeat")) return refused(text, now);
    if (m.topic !== "phoenix" && !m.event.startsWith("phx_")) telemetry.emit("channel.message.in", { bytes }, { topic: m.topic, event: m.event });
    queue.push(m);
    if (!running) void drain();
  }

  /** A refusal for rate: no JSON parse, no telemetry event, one short reply (when addressable). */
  function refused(text: string, now: number): void {
    if (refuse(refusals, now)) return connection.close(CLOSE.FLOODING, "too many events refused for rate");
    const to = peekAddress(text);
    if (to !== undefined) send(encodeReply(to.joinRef, to.ref, to.topic, "error", RATE_LIMITED));
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      for (let next = queue.shift(); next !== undefined && !closed; next = queue.shift()) {
        const channelEvent = next.topic !== "phoenix" && !next.event.startsWith("phx_");
        // Joins, leaves and heartbeats see every earlier event answered.
        if (!channelEvent && inService > 0) await answered;
        if (closed) break;
        try {
          const pending = dispatch(next);
          // Synchronous answers (heartbeats, unmatched topics) need no turn of the event loop;
          // a channel event is answered in order by `handleIn` while the next one starts.
          if (pending instanceof Promise && !(channelEvent && channels.has(next.topic))) await pending;
        } catch (error) {
          logger.error({ err: error, topic: next.topic, event: next.event }, "socket dispatch failed");
        }
      }
    } finally {
      running = false;
    }
  }

  function dispatch(m: InboundMessage): Promise<void> | void {
    if (m.event === "phx_join") return telemetry.span("channel.join.start", { topic: m.topic, user_id: socket.userId }, () => join(m));
    if (m.topic === "phoenix" && m.event === "heartbeat") return reply(null, m.ref, "phoenix", "ok", {});
    const joined = channels.get(m.topic);
    if (joined !== undefined && m.joinRef !== null && m.joinRef !== joined.joinRef) return; // stale: ignore
    if (m.event === "phx_leave") {
      reply(joined?.joinRef ?? m.joinRef, m.ref, m.topic, "ok", {});
      if (joined !== undefined) end(joined, "leave");
      return;
    }
    if (joined === undefined) return reply(null, m.ref, m.topic, "error", { reason: "unmatched topic" });
    return telemetry.span("channel.event.start", { topic: m.topic, event: m.event }, () => handleIn(joined, m));
  }

  async function join(m: InboundMessage): Promise<void> {
    const started = performance.now();
    const answered = (outcome: "ok" | "error", reason?: string): void =>
      telemetry.emit("channel.join.stop", { duration_ms: performance.now() - started }, { topic: m.topic, outcome, reason, user_id: socket.userId });
    const route = findRoute(services.routes, m.topic);
    if (route === undefined) {
      reply(null, m.ref, m.topic, "error", { reason: "unmatched topic" });
      return answered("error", "unmatched topic");
    }
    const joinRef = m.joinRef ?? m.ref ?? "";
    const previous = channels.get(m.topic);
    if (previous !== undefined) end(previous, "rejoin");
    const closePrevious = (): void => {
      if (previous !== undefined) send(encode(previous.joinRef, previous.joinRef, m.topic, "phx_close", {}));
    };
    if (channels.size >= limits.maxChannels) {
      reply(joinRef, m.ref, m.topic, "error", { reason: "too_many_channels" });
      closePrevious();
      return answered("error", "too_many_channels");
    }
    const joined = open(route, m.topic, joinRef);
    let result: Awaited<ReturnType<Channel["join"]>>;
    try {
      result = await joined.channel.join(m.payload, joined.ctx);
    } catch (error) {
      result = { status: "error", response: failure(error, "join crashed", m) };
    }
    if (closed) return; // the socket went away while we waited; nothing was registered
    connection.cork(() => {
      if (result.status === "ok") {
        channels.set(m.topic, joined);
        reply(joinRef, m.ref, m.topic, "ok", result.response ?? {});
        joined.ctx.subscribe(versionStream(m.topic, socket.apiVersion));
        services.broadcasts.retain(m.topic);
      } else {
        reply(joinRef, m.ref, m.topic, "error", result.response);
      }
      closePrevious();
    });
    const reason = result.status === "ok" ? undefined : (result.response as { reason?: unknown }).reason;
    answered(result.status === "ok" ? "ok" : "error", typeof reason === "string" ? reason : undefined);
    if (result.status !== "ok") return;
    try {
      await joined.channel.handleInfo({ event: "after_join" }, joined.ctx);
    } catch (error) {
      crash(joined, error);
    }
  }

  function handleIn(joined: Joined, m: InboundMessage): Promise<void> {
    const outcome = serve(joined, m);
    const previous = answered;
    inService++;
    const done = (async () => {
      const result = await outcome;
      await previous; // replies in arrival order
      inService--;
      if (result === CRASHED) return;
      if (result !== undefined && channels.get(m.topic) === joined) {
        connection.cork(() => reply(joined.joinRef, m.ref, m.topic, result.status, result.response));
      }
    })();
    answered = done;
    return done;
  }

  async function serve(joined: Joined, m: InboundMessage): Promise<Reply | undefined | typeof CRASHED> {
    try {
      return await joined.channel.handleIn(m.event, m.payload, joined.ctx);
    } catch (error) {
      if (!(error instanceof DomainError) && !isDatabaseUnavailable(error)) {
        crash(joined, error);
        return CRASHED;
      }
      return { status: "error", response: failure(error, "", m) };
    }
  }

  function open(route: ChannelRoute, topic: string, joinRef: string): Joined {
    const streams = new Set<string>();
    const ctx: ChannelContext = {
      topic,
      joinRef,
      socket,
      push(event, payload) {
        if (channels.get(topic)?.ctx !== ctx) return;
        connection.cork(() => send(encode(joinRef, null, topic, event, payload)));
        telemetry.emit("channel.message.out", { count: 1 }, { topic, event });
      },
      pushEncoded(event, payloadJson) {
        if (channels.get(topic)?.ctx !== ctx) return;
        connection.cork(() => send(encodeWithJson(joinRef, null, topic, event, payloadJson)));
        telemetry.emit("channel.message.out", { count: 1 }, { topic, event });
      },
      subscribe(stream) {
        if (channels.get(topic)?.ctx !== ctx || streams.has(stream)) return;
        streams.add(stream);
        connection.subscribe(stream);
      },
    };
    return { joinRef, channel: route.create(topic), ctx, streams };
  }

  /** Ends a joined channel: forget it, unsubscribe its streams (except at shutdown), let it clean up. */
  function end(joined: Joined, reason: TerminateReason): void {
    if (channels.get(joined.ctx.topic) !== joined) return;
    channels.delete(joined.ctx.topic);
    if (reason !== "shutdown" && reason !== "closed") for (const stream of joined.streams) connection.unsubscribe(stream);
    services.broadcasts.release(joined.ctx.topic);
    telemetry.emit("channel.leave", {}, { topic: joined.ctx.topic, reason });
    try {
      joined.channel.terminate(reason, joined.ctx);
    } catch (error) {
      logger.error({ err: error, topic: joined.ctx.topic }, "channel terminate failed");
    }
  }

  function crash(joined: Joined, error: unknown): void {
    logger.error({ err: error, topic: joined.ctx.topic, socket: socket.id }, "channel crashed");
    if (channels.get(joined.ctx.topic) !== joined) return;
    end(joined, "crash");
    connection.cork(() => send(encode(joined.joinRef, joined.joinRef, joined.ctx.topic, "phx_error", { reason: "channel_crash" })));
  }

  function failure(error: unknown, crashReason: string, m: InboundMessage): Payload {
    if (error instanceof DomainError) {
      return error.errors.length > 0 ? { reason: error.code, errors: error.errors.map((e) => ({ ...e })) } : { reason: error.code };
    }
    if (isDatabaseUnavailable(error)) {
      logger.warn({ err: { message: (error as Error).message }, topic: m.topic, event: m.event }, "database unavailable");
      return { reason: "unavailable" };
    }
    logger.error({ err: error, topic: m.topic, event: m.event }, "channel join crashed");
    return { reason: crashReason };
  }

  return {
    info: socket,
    message,
    evict(topic, reason) {
      const joined = channels.get(topic);
      if (joined === undefined) return;
      end(joined, "evicted");
      connection.cork(() => send(encode(joined.joinRef, joined.joinRef, topic, "phx_close", { reason })));
    },
    close(code, reason) {
      connection.close(code, reason);
    },
    closed() {
      if (closed) return;
      closed = true;
      queue.length = 0;
      for (const joined of [...channels.values()]) end(joined, "closed");
    },
    stop() {
      for (const joined of [...channels.values()]) end(joined, "shutdown");
    },
  };
}

const RATE_LIMITED: Payload = Object.freeze({ reason: "rate_limited" });
const CRASHED = Symbol("crashed");

function truncate(text: string): string {
  // A close reason must fit in 123 bytes.
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
