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
import {
  findRoute,
  type Channel,
  type ChannelContext,
  type ChannelRoute,
  type JoinResult,
  type Reply,
  type SocketInfo,
  type TerminateReason,
} from "./channel.ts";
import { CLOSE } from "./close-codes.ts";
import {
  createRefusalWindow,
  refuse,
  take,
  type Bucket,
  type FloodLimit,
  type RateLimit,
  type RefusalWindow,
} from "./rate-limit.ts";
import {
  decode,
  encode,
  encodeReply,
  frameHead,
  FRAME_TAIL,
  peekAddress,
  type InboundMessage,
  type Payload,
  type Ref,
  type SharedPayload,
} from "./serializer.ts";
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

export interface SocketEngine extends ConnectionHandler {
  readonly info: SocketInfo;
  /** `performance.now()` when the socket opened. */
  readonly openedAt: number;
  /** Terminates every channel for a shutdown, keeping stream subscriptions so pending presence diffs still arrive. */
  stop(): void;
  /** Ends the channel on `topic`, if joined, telling the client `phx_close {reason}`. */
  evict(topic: string, reason: string): void;
  /** Closes the connection (no-op once closed). */
  close(code: number, reason: string): void;
}

/**
 * `onClosed` runs after the engine has ended every channel of a closed connection. It is given the
 * engine, so one function can serve every socket (a closure per socket would be one more object
 * each socket keeps).
 *
 *     const engine = createSocketEngine(connection, info, services, (engine, code) => forget(engine))
 *     // the transport then calls engine.message(text, bytes) and engine.closed(code)
 */
export function createSocketEngine(
  connection: Connection,
  socket: SocketInfo,
  services: EngineServices,
  onClosed?: (engine: SocketEngine, code: number) => void,
): SocketEngine {
  return new Engine(connection, socket, services, onClosed);
}

// A class, not closures: one engine lives per open socket, and methods on the prototype cost
// nothing per socket where a closure per function cost about 1 KiB (benchmarks/NOTES.md, bench:ws). For the
// same reason the engine is its own token bucket, and its refusal window and queue hold nothing
// until they are needed: every object a socket keeps is copied by each young-generation collection
// it survives, and stays in RSS while the socket is open.
class Engine implements SocketEngine, Bucket {
  readonly openedAt = performance.now();
  private readonly channels = new Map<string, Joined>();
  /** Events that came while another was being handled; empty (and never grown) for most sockets. */
  private readonly queue: InboundMessage[] = [];
  /** The token bucket's state (see rate-limit.ts). */
  tokens: number;
  at: number;
  private refusals: RefusalWindow | undefined;
  private running = false;
  private isClosed = false;
  /** Pipelined channel events not yet answered, and the answer the next one must wait for. */
  private inService = 0;
  private answered: Promise<void> = ANSWERED;

  constructor(
    private readonly connection: Connection,
    readonly info: SocketInfo,
    private readonly services: EngineServices,
    private readonly onClosed: ((engine: SocketEngine, code: number) => void) | undefined,
  ) {
    this.tokens = services.limits.rate.burst;
    this.at = this.openedAt;
  }

  send(frame: string): void {
    this.connection.send(frame);
  }

  reply(joinRef: Ref, ref: Ref, topic: string, status: string, response: Payload): void {
    if (ref === null) return;
    this.send(encodeReply(joinRef, ref, topic, status, response));
    this.services.telemetry.emit("channel.message.out", { count: 1 }, { topic, event: "phx_reply" });
  }

  message(text: string | null, bytes: number): void {
    if (this.isClosed) return;
    const { limits, telemetry } = this.services;
    if (bytes > limits.maxFrameBytes) return this.connection.close(CLOSE.MESSAGE_TOO_BIG, "frame over 64 KiB");
    if (text === null) return this.connection.close(CLOSE.UNSUPPORTED_DATA, "binary frames are not supported");
    const now = performance.now();
    if (!take(this, now, limits.rate)) return this.refused(text, now);
    const decoded = decode(text);
    if (!decoded.ok) {
      if (decoded.replyTo === undefined) return this.connection.close(CLOSE.MALFORMED, truncate(decoded.detail));
      const { joinRef, ref, topic } = decoded.replyTo;
      return this.reply(joinRef, ref, topic, "error", { reason: "malformed", detail: decoded.detail });
    }
    const m = decoded.message;
    // Heartbeats are never refused for a full queue: refusing them would make the client reconnect.
    const waiting = this.queue.length + Math.max(0, this.inService - 1);
    if (waiting >= limits.maxQueued && !(m.topic === "phoenix" && m.event === "heartbeat"))
      return this.refused(text, now);
    if (m.topic !== "phoenix" && !m.event.startsWith("phx_"))
      telemetry.emit("channel.message.in", { bytes }, { topic: m.topic, event: m.event });
    if (this.running) this.queue.push(m);
    else void this.drain(m);
  }

  /** A refusal for rate: no JSON parse, no telemetry event, one short reply (when addressable). */
  private refused(text: string, now: number): void {
    this.refusals ??= createRefusalWindow(this.services.limits.flood);
    if (refuse(this.refusals, now)) return this.connection.close(CLOSE.FLOODING, "too many events refused for rate");
    const to = peekAddress(text);
    if (to !== undefined) this.send(encodeReply(to.joinRef, to.ref, to.topic, "error", RATE_LIMITED));
  }

  /** Handles `first`, then whatever came meanwhile, in order. */
  private async drain(first: InboundMessage): Promise<void> {
    this.running = true;
    try {
      for (
        let next: InboundMessage | undefined = first;
        next !== undefined && !this.isClosed;
        next = this.queue.shift()
      ) {
        const channelEvent = next.topic !== "phoenix" && !next.event.startsWith("phx_");
        // Joins, leaves and heartbeats see every earlier event answered.
        if (!channelEvent && this.inService > 0) await this.answered;
        if (this.isClosed) break;
        try {
          const pending = this.dispatch(next);
          // Synchronous answers (heartbeats, unmatched topics) need no turn of the event loop;
          // a channel event is answered in order by `handleIn` while the next one starts.
          if (pending instanceof Promise && !(channelEvent && this.channels.has(next.topic))) await pending;
        } catch (error) {
          this.services.logger.error({ err: error, topic: next.topic, event: next.event }, "socket dispatch failed");
        }
      }
    } finally {
      this.running = false;
    }
  }

  private dispatch(m: InboundMessage): Promise<void> | void {
    const { telemetry } = this.services;
    // Span metadata and a closure only for a tracer: without one, the work runs as it is.
    if (m.event === "phx_join")
      return telemetry.tracing()
        ? telemetry.span("channel.join.start", { topic: m.topic, user_id: this.info.userId }, () => this.join(m))
        : this.join(m);
    if (m.topic === "phoenix" && m.event === "heartbeat") return this.reply(null, m.ref, "phoenix", "ok", {});
    const joined = this.channels.get(m.topic);
    if (joined !== undefined && m.joinRef !== null && m.joinRef !== joined.joinRef) return; // stale: ignore
    if (m.event === "phx_leave") {
      this.reply(joined?.joinRef ?? m.joinRef, m.ref, m.topic, "ok", {});
      if (joined !== undefined) this.end(joined, "leave");
      return;
    }
    if (joined === undefined) return this.reply(null, m.ref, m.topic, "error", { reason: "unmatched topic" });
    return telemetry.tracing()
      ? telemetry.span("channel.event.start", { topic: m.topic, event: m.event }, () => this.handleIn(joined, m))
      : this.handleIn(joined, m);
  }

  /**
   * A join is answered in the same turn when its channel decides at once (a room join whose
   * authorisation is remembered): no promise and no later turn of the loop, and the reply goes out
   * in the cork of the frame that asked.
   */
  private join(m: InboundMessage): Promise<void> | void {
    const started = performance.now();
    const route = findRoute(this.services.routes, m.topic);
    if (route === undefined) {
      this.reply(null, m.ref, m.topic, "error", { reason: "unmatched topic" });
      return this.joinAnswered(m, started, "error", "unmatched topic");
    }
    const joinRef = m.joinRef ?? m.ref ?? "";
    const previous = this.channels.get(m.topic);
    if (previous !== undefined) this.end(previous, "rejoin");
    if (this.channels.size >= this.services.limits.maxChannels) {
      this.reply(joinRef, m.ref, m.topic, "error", { reason: "too_many_channels" });
      this.closeReplaced(previous, m.topic);
      return this.joinAnswered(m, started, "error", "too_many_channels");
    }
    const joined = this.open(route, m.topic, joinRef);
    let outcome: JoinResult | Promise<JoinResult>;
    try {
      outcome = joined.channel.join(m.payload, joined);
    } catch (error) {
      outcome = this.joinCrashed(error, m);
    }
    // Decided at once: no function is made for a later answer.
    if (!(outcome instanceof Promise)) return this.joinDecided(m, joined, previous, started, outcome);
    return outcome.then(
      (result) => this.joinDecided(m, joined, previous, started, result),
      (error: unknown) => this.joinDecided(m, joined, previous, started, this.joinCrashed(error, m)),
    );
  }

  private joinCrashed(error: unknown, m: InboundMessage): JoinResult {
    return { status: "error", response: this.failure(error, "join crashed", m) };
  }

  /** Answers a join its channel has decided, then runs its `after_join`. */
  private joinDecided(
    m: InboundMessage,
    joined: Joined,
    previous: Joined | undefined,
    started: number,
    result: JoinResult,
  ): Promise<void> | void {
    if (this.isClosed) return; // the socket went away while we waited; nothing was registered
    const { joinRef } = joined;
    this.connection.cork(() => {
      if (result.status === "ok") {
        this.channels.set(m.topic, joined);
        this.reply(joinRef, m.ref, m.topic, "ok", result.response ?? {});
        joined.subscribe(versionStream(m.topic, this.info.apiVersion));
        this.services.broadcasts.retain(m.topic);
      } else {
        this.reply(joinRef, m.ref, m.topic, "error", result.response);
      }
      this.closeReplaced(previous, m.topic);
    });
    const reason = result.status === "ok" ? undefined : (result.response as { reason?: unknown }).reason;
    this.joinAnswered(
      m,
      started,
      result.status === "ok" ? "ok" : "error",
      typeof reason === "string" ? reason : undefined,
    );
    if (result.status !== "ok") return;
    let after: Promise<void> | void;
    try {
      after = joined.channel.handleInfo({ event: "after_join" }, joined);
    } catch (error) {
      return this.crash(joined, error);
    }
    if (after instanceof Promise) return after.catch((error: unknown) => this.crash(joined, error));
  }

  private joinAnswered(m: InboundMessage, started: number, outcome: "ok" | "error", reason?: string): void {
    this.services.telemetry.emit(
      "channel.join.stop",
      { duration_ms: performance.now() - started },
      { topic: m.topic, outcome, reason, user_id: this.info.userId },
    );
  }

  /** A duplicate join's old channel is told `phx_close` with its own join_ref, after the new join's reply. */
  private closeReplaced(previous: Joined | undefined, topic: string): void {
    if (previous !== undefined) this.send(encode(previous.joinRef, previous.joinRef, topic, "phx_close", {}));
  }

  private handleIn(joined: Joined, m: InboundMessage): Promise<void> {
    const outcome = this.serve(joined, m);
    const previous = this.answered;
    this.inService++;
    const done = (async () => {
      const result = await outcome;
      await previous; // replies in arrival order
      this.inService--;
      if (result === CRASHED) return;
      if (result !== undefined && this.channels.get(m.topic) === joined) {
        this.connection.cork(() => this.reply(joined.joinRef, m.ref, m.topic, result.status, result.response));
      }
    })();
    this.answered = done;
    return done;
  }

  private async serve(joined: Joined, m: InboundMessage): Promise<Reply | undefined | typeof CRASHED> {
    try {
      return await joined.channel.handleIn(m.event, m.payload, joined);
    } catch (error) {
      if (!(error instanceof DomainError) && !isDatabaseUnavailable(error)) {
        this.crash(joined, error);
        return CRASHED;
      }
      return { status: "error", response: this.failure(error, "", m) };
    }
  }

  private open(route: ChannelRoute, topic: string, joinRef: string): Joined {
    return new Joined(this, topic, joinRef, route.create(topic));
  }

  /** Whether `joined` is the channel currently joined on its topic. */
  current(joined: Joined): boolean {
    return this.channels.get(joined.topic) === joined;
  }

  subscribeStream(stream: string): void {
    this.connection.subscribe(stream);
  }

  corkSend(frame: string, topic: string, event: string): void {
    this.connection.cork(() => this.send(frame));
    this.services.telemetry.emit("channel.message.out", { count: 1 }, { topic, event });
  }

  /** As `corkSend`, for a frame whose payload many sockets share (see SharedPayload). */
  corkSendShared(head: string, payload: SharedPayload, topic: string, event: string): void {
    this.connection.cork(() => this.connection.sendFragmented(head, payload.bytes, FRAME_TAIL));
    this.services.telemetry.emit("channel.message.out", { count: 1 }, { topic, event });
  }

  /** Ends a joined channel: forget it, unsubscribe its streams (except at shutdown), let it clean up. */
  private end(joined: Joined, reason: TerminateReason): void {
    if (this.channels.get(joined.topic) !== joined) return;
    this.channels.delete(joined.topic);
    if (reason !== "shutdown" && reason !== "closed")
      for (const stream of joined.streams) this.connection.unsubscribe(stream);
    this.services.broadcasts.release(joined.topic);
    this.services.telemetry.emit("channel.leave", {}, { topic: joined.topic, reason });
    try {
      joined.channel.terminate(reason, joined);
    } catch (error) {
      this.services.logger.error({ err: error, topic: joined.topic }, "channel terminate failed");
    }
  }

  private crash(joined: Joined, error: unknown): void {
    this.services.logger.error({ err: error, topic: joined.topic, socket: this.info.id }, "channel crashed");
    if (this.channels.get(joined.topic) !== joined) return;
    this.end(joined, "crash");
    this.connection.cork(() =>
      this.send(encode(joined.joinRef, joined.joinRef, joined.topic, "phx_error", { reason: "channel_crash" })),
    );
  }

  private failure(error: unknown, crashReason: string, m: InboundMessage): Payload {
    const { logger } = this.services;
    if (error instanceof DomainError) {
      return error.errors.length > 0
        ? { reason: error.code, errors: error.errors.map((e) => ({ ...e })) }
        : { reason: error.code };
    }
    if (isDatabaseUnavailable(error)) {
      logger.warn(
        { err: { message: (error as Error).message }, topic: m.topic, event: m.event },
        "database unavailable",
      );
      return { reason: "unavailable" };
    }
    logger.error({ err: error, topic: m.topic, event: m.event }, "channel join crashed");
    return { reason: crashReason };
  }

  evict(topic: string, reason: string): void {
    const joined = this.channels.get(topic);
    if (joined === undefined) return;
    this.end(joined, "evicted");
    this.connection.cork(() => this.send(encode(joined.joinRef, joined.joinRef, topic, "phx_close", { reason })));
  }

  close(code: number, reason: string): void {
    this.connection.close(code, reason);
  }

  closed(code: number): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue.length = 0;
    for (const joined of [...this.channels.values()]) this.end(joined, "closed");
    this.onClosed?.(this, code);
  }

  stop(): void {
    for (const joined of [...this.channels.values()]) this.end(joined, "shutdown");
  }
}

/**
 * A joined channel: the channel, and its context, which is what the channel sees of its socket
 * (pushes and subscriptions that stop once the channel has ended). One object, not two, per channel.
 */
class Joined implements ChannelContext {
  /** Replaced, not grown, on subscribe: a channel has one or two streams, and an array grown by `push` or a spread reserves 17 slots. */
  streams: readonly string[] = NO_STREAMS;
  readonly socket: SocketInfo;

  constructor(
    private readonly engine: Engine,
    readonly topic: string,
    readonly joinRef: string,
    readonly channel: Channel,
  ) {
    this.socket = engine.info;
  }

  push(event: string, payload: Payload): void {
    if (this.engine.current(this))
      this.engine.corkSend(encode(this.joinRef, null, this.topic, event, payload), this.topic, event);
  }

  pushShared(event: string, payload: SharedPayload): void {
    if (this.engine.current(this))
      this.engine.corkSendShared(frameHead(this.joinRef, null, this.topic, event), payload, this.topic, event);
  }

  subscribe(stream: string): void {
    if (!this.engine.current(this) || this.streams.includes(stream)) return;
    this.streams = this.streams.concat(stream);
    this.engine.subscribeStream(stream);
  }
}

const NO_STREAMS: readonly string[] = Object.freeze([]);
const RATE_LIMITED: Payload = Object.freeze({ reason: "rate_limited" });
/** What a socket with nothing in service waits for: shared, since it is only ever awaited. */
const ANSWERED: Promise<void> = Promise.resolve();
const CRASHED = Symbol("crashed");

function truncate(text: string): string {
  // A close reason must fit in 123 bytes.
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
