/**
 * Realtime: Phoenix Channels V2 over uWebSockets.js, served so the unmodified `phoenix` JS
 * client works against it (the README's Realtime section is the contract it keeps;
 * docs/channels-protocol.md, what the client depends on).
 *
 *     const realtime = await startRealtime(deps, { host: "127.0.0.1", port: 4001 })
 *     realtime.port                      // the bound port (useful with port 0)
 *     realtime.presence.list("room:1")   // the presence_state shape, for GET /rooms/1/presence
 *     await realtime.shutdown()          // leave diffs first, then 1012 to every socket
 *
 * Endpoint `ws://HOST:PORT/socket/websocket?vsn=2.0.0&token=<socket_token>[&api_version=1|2]`,
 * or the token in the `base64url.bearer.phx.<base64>` subprotocol. Missing/bad/expired/revoked
 * token, `vsn` other than 2.x or an `api_version` other than 1|2 → HTTP 403 before any socket
 * exists; a user already at `SOCKETS_PER_USER` open sockets → 429; any other path → 404. Without
 * `api_version` the socket gets its user's pinned version as it stands (the token's, or a change
 * announced since: accounts.verifySocketTokenNow, no database read), else the default. A version past its sunset or inside a brownout → HTTP 410 with a `/problems/version-gone`
 * body, as over HTTP. Close codes and limits: close-codes.ts.
 *
 * What the contexts announce reaches the open sockets of this node: a revoked session closes
 * the sockets opened with its tokens (4401); an ended room access evicts the channels that may no
 * longer read the room (`phx_close {reason}`), and the room channel forgets cached join decisions.
 */
import { randomBytes } from "node:crypto";
import type { Presence, Presences } from "../presence/index.ts";
import { roomTopic } from "../rooms/index.ts";
import { compileChannelSchemas } from "../schemas.ts";
import { describeWithdrawal, type Withdrawal } from "../version-policy.ts";
import { API_VERSIONS, CURRENT_VERSION, DEFAULT_VERSION, mediaType, type ApiVersion } from "../versions.ts";
import { findRoute, type ChannelRoute, type SocketInfo } from "./channel.ts";
import { adminRoute } from "./channels/admin-channel.ts";
import { roomRoute } from "./channels/room-channel.ts";
import {
  CLOSE,
  FLOOD_REFUSALS,
  FLOOD_WINDOW_MS,
  HARD_FRAME_BYTES,
  IDLE_TIMEOUT_SECONDS,
  MAX_BACKPRESSURE_BYTES,
  MAX_CHANNELS,
  MAX_FRAME_BYTES,
} from "./close-codes.ts";
import { parseHandshake, SOCKET_PATH } from "./handshake.ts";
import { encode } from "./serializer.ts";
import type { RealtimeDeps } from "./deps.ts";
import { createSocketEngine, type SocketEngine, type SocketLimits } from "./socket.ts";
import { createRefCount, presenceStream, versionStream } from "./streams.ts";
import { listen, type UpgradeDecision } from "./transport.ts";

export type { Channel, ChannelContext, ChannelRoute, JoinResult, Reply, SocketInfo } from "./channel.ts";
export { CLOSE } from "./close-codes.ts";

export interface RealtimeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Overrides; the defaults come from config (rate) and close-codes.ts. */
  limits?: Partial<SocketLimits>;
  /** Extra channel routes, matched after `room:*`. */
  channels?: readonly ChannelRoute[];
}

export interface RealtimeServer {
  readonly port: number;
  readonly presence: Presence;
  /** Sockets currently open. */
  connections(): number;
  /** Untracks every presence (others get leave diffs), closes every socket with 1012, stops listening. */
  shutdown(): Promise<void>;
}

export async function startRealtime(deps: RealtimeDeps, options: RealtimeOptions): Promise<RealtimeServer> {
  const { logger, telemetry, presence } = deps;
  const schemas = compileChannelSchemas();
  const limits: SocketLimits = {
    maxFrameBytes: MAX_FRAME_BYTES,
    maxChannels: MAX_CHANNELS,
    rate: { rate: deps.config.socketRateLimit, burst: deps.config.socketRateBurst },
    flood: { limit: FLOOD_REFUSALS, windowMs: FLOOD_WINDOW_MS },
    // As many as one burst: a burst the bucket admits is queued whole, nothing beyond it.
    maxQueued: deps.config.socketRateBurst,
    ...options.limits,
  };
  const engines = new Set<SocketEngine>();
  const bySession = new Map<number, Set<SocketEngine>>();
  const byUser = new Map<number, Set<SocketEngine>>();
  const node = randomBytes(4).toString("hex");
  let sequence = 0;
  let draining = false;

  // Filled in once the transport listens; nothing publishes before a socket has joined.
  let publish: (stream: string, frame: string) => void = () => {};
  let subscribers: (stream: string) => number = () => 0;

  const presenceRelay = createRefCount((topic) =>
    presence.subscribe(topic, (diff) => {
      publish(
        presenceStream(topic),
        encode(null, null, topic, "presence_diff", { joins: diff.joins, leaves: diff.leaves }),
      );
      telemetry.emit("presence.change", { joins: countMetas(diff.joins), leaves: countMetas(diff.leaves) }, { topic });
    }),
  );
  const room = roomRoute({
    rooms: deps.rooms,
    presence,
    // While draining, keep relaying so the leave diffs of the shutdown still reach sockets.
    presenceRelay: {
      retain: presenceRelay.retain,
      release: (topic) => (draining ? undefined : presenceRelay.release(topic)),
      clear: presenceRelay.clear,
    },
    schemas,
  });
  const routes: ChannelRoute[] = [
    room,
    adminRoute({ accounts: deps.accounts, adminEmails: deps.config.adminEmails, feed: deps.dashboard }),
    ...(options.channels ?? []),
  ];

  const unsubscribes = [
    deps.accounts.onSessionsRevoked((sessionIds) => {
      for (const id of sessionIds) {
        for (const engine of [...(bySession.get(id) ?? [])]) engine.close(CLOSE.REVOKED, "session revoked");
      }
    }),
    deps.rooms.onAccessEnded((ended) => {
      room.forget(ended);
      const topic = roomTopic(ended.roomId);
      const affected = ended.userId === null ? engines : (byUser.get(ended.userId) ?? []);
      for (const engine of [...affected]) engine.evict(topic, ended.reason);
    }),
  ];

  // One PubSub subscription per topic with local subscribers; each broadcast is rendered and
  // encoded once per API version that has subscribers, then fanned out natively.
  const broadcasts = createRefCount((topic) => {
    const render = findRoute(routes, topic)?.render;
    if (render === undefined) return () => {};
    return deps.pubsub.subscribe(topic, (message) => {
      for (const version of API_VERSIONS) {
        const stream = versionStream(topic, version);
        const deliveries = subscribers(stream);
        if (deliveries === 0) continue;
        const rendered = render(message, version);
        if (rendered === undefined) continue;
        publish(stream, encode(null, null, topic, rendered.event, rendered.payload));
        telemetry.emit("broadcast.fanout", { deliveries }, { topic, event: rendered.event });
      }
    });
  });

  const engineServices = { routes, broadcasts, limits, logger, telemetry };
  // One function for every socket's close, not a closure per socket (socket.ts).
  const engineClosed = (engine: SocketEngine, code: number): void => {
    const { userId, sessionId, apiVersion } = engine.info;
    engines.delete(engine);
    removeFrom(bySession, sessionId, engine);
    removeFrom(byUser, userId, engine);
    deps.socketQuota.release(userId);
    telemetry.emit(
      "socket.close",
      { duration_ms: performance.now() - engine.openedAt },
      { code, user_id: userId, api_version: apiVersion },
    );
  };
  const transport = await listen<SocketInfo>(
    {
      host: options.host,
      port: options.port,
      path: SOCKET_PATH,
      maxPayloadLength: HARD_FRAME_BYTES,
      maxBackpressure: MAX_BACKPRESSURE_BYTES,
      idleTimeoutSeconds: IDLE_TIMEOUT_SECONDS,
    },
    {
      // Synchronous whenever it can be: an upgrade answered later costs more (transport.ts's cork
      // host). Only the cluster-wide socket quota (a Redis round trip) answers later.
      upgrade(request): UpgradeDecision<SocketInfo> | Promise<UpgradeDecision<SocketInfo>> {
        if (draining) return { accept: false, status: 403 };
        const handshake = parseHandshake(request);
        if (!handshake.ok) return { accept: false, status: handshake.status };
        const verified = deps.accounts.verifySocketTokenNow(handshake.token);
        if (!verified.ok) return { accept: false, status: 403 };
        const { userId, sessionId } = verified;
        const apiVersion = handshake.apiVersion ?? verified.pinnedVersion ?? DEFAULT_VERSION;
        const now = deps.clock.now();
        const why = deps.config.versions.withdrawal(apiVersion, now);
        if (why !== undefined) return versionGone(apiVersion, why, now);
        const admit = (acquired: boolean): UpgradeDecision<SocketInfo> => {
          if (!acquired) return { accept: false, status: 429 };
          if (draining) {
            deps.socketQuota.release(userId);
            return { accept: false, status: 403 };
          }
          const info: SocketInfo = { id: `${node}.${(sequence++).toString(36)}`, userId, sessionId, apiVersion };
          return { accept: true, session: info, protocol: handshake.protocol };
        };
        const acquired = deps.socketQuota.acquire(userId);
        return typeof acquired === "boolean" ? admit(acquired) : acquired.then(admit);
      },
      abandoned(info) {
        deps.socketQuota.release(info.userId);
      },
      open(connection, info) {
        const { userId, sessionId, apiVersion } = info;
        const engine = createSocketEngine(connection, info, engineServices, engineClosed);
        engines.add(engine);
        addTo(bySession, sessionId, engine);
        addTo(byUser, userId, engine);
        // Revoked while the upgrade was being answered: the announcement found no socket to close.
        // Closed from the next turn: the transport registers this handler only once `open` returns.
        if (deps.accounts.isSessionRevoked(sessionId))
          setImmediate(() => engine.close(CLOSE.REVOKED, "session revoked"));
        telemetry.emit("socket.open", {}, { api_version: apiVersion, user_id: userId });
        return engine;
      },
      error(error, where) {
        logger.error({ err: error, where }, "realtime transport error");
      },
    },
  );
  publish = transport.publish;
  subscribers = transport.subscribers;
  logger.debug({ port: transport.port }, "realtime listening");

  return {
    port: transport.port,
    presence,
    connections: () => engines.size,
    async shutdown() {
      if (draining) return;
      draining = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      transport.stopListening();
      for (const engine of engines) engine.stop();
      await presence.flush(); // the leave diffs go out while every socket is still subscribed
      transport.closeAll(CLOSE.SERVICE_RESTART, "server restart");
      presenceRelay.clear();
      broadcasts.clear();
    },
  };
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

/**
 * The HTTP 410 refusing an upgrade in a withdrawn version: the same problem as over HTTP, with
 * the successor and, inside a brownout, when to come back.
 */
function versionGone(version: ApiVersion, why: Withdrawal, now: Date): UpgradeDecision<SocketInfo> {
  const detail = `${describeWithdrawal(version, why)}; connect with api_version=${CURRENT_VERSION}`;
  const body = JSON.stringify({
    type: "/problems/version-gone",
    title: "Version Gone",
    status: 410,
    detail,
    version,
    successor_version: CURRENT_VERSION,
  });
  const headers: Record<string, string> = {
    "Content-Type": "application/problem+json",
    Link: `<${SOCKET_PATH}?api_version=${CURRENT_VERSION}>; rel="successor-version"; type="${mediaType(CURRENT_VERSION)}"`,
  };
  if (why.reason === "brownout")
    headers["Retry-After"] = String(Math.max(1, Math.ceil((why.window.end.getTime() - now.getTime()) / 1000)));
  return { accept: false, status: 410, headers, body };
}

/** How many presence entries (metas) a diff side holds. */
function countMetas(side: Presences): number {
  let n = 0;
  for (const key in side) n += side[key]!.metas.length;
  return n;
}
