/**
 * The clustered Presence (cluster-design.md §6.4–6.5): Redis is the source of truth, each node
 * reads a local replica. It implements the same `Presence` interface as the local store, so the
 * realtime tier cannot tell them apart:
 *
 *     const presence = await createRedisPresence({ url, name: "n1", windowMs: 30 })
 *     presence.subscribe("room:1", listener) // SUBSCRIBE rt:<p>:pd:room:1, then snapshot → replica
 *     presence.track("room:1", "sock-7", "42", { online_at }) // replica now; Lua HSET+SADD+PUBLISH
 *     presence.list("room:1")                // sync, from the replica
 *     await presence.snapshot("room:1")      // the cluster's view once the replica is synced (REST)
 *     await presence.close()                 // untrack all (leaves), drop the lease
 *
 * - Replica: per topic with local listeners or local entries, a `TopicState` (./state.ts) whose
 *   owners are phx_refs. Own changes apply at once; other nodes' arrive as diffs on
 *   `rt:<p>:pd:<topic>`. On the first listener the node SUBSCRIBEs, waits for the ack, reads a
 *   filtered snapshot (SNAPSHOT script) and reconciles, applying the diffs buffered meanwhile.
 *   Every change of the replica reaches the listeners as diffs coalesced over `windowMs`, exactly
 *   like the local store, so `list()` + later diffs is always consistent.
 * - Liveness: a lease in `rt:<p>:nodes` extended every `heartbeatMs` by Redis TIME; a reaper
 *   every `reapMs` (jittered) reaps expired nodes under a `SET NX PX` lock, one leaves diff per
 *   topic. A heartbeat that finds its lease gone/expired or the epoch changed starts a new
 *   incarnation: reap the old one, re-track every local entry with new phx_refs, re-sync replicas.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { createNodeId } from "../cluster/node-id.ts";
import type { Telemetry } from "../telemetry/index.ts";
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import type { DiffListener, Presence } from "./index.ts";
import { EXPIRED, HEARTBEAT, REAP, SNAPSHOT, TRACK, UNTRACK } from "./redis/scripts.ts";
import { createTopicState, isEmpty, list, takeDiff, track, untrack, type Meta, type Presences, type TopicState } from "./state.ts";

export interface RedisPresenceOptions {
  url: string;
  name?: string;
  /** `rt:<prefix>:…` (default "hypercast"); tests use one per run. */
  prefix?: string;
  /** Diff coalescing window (default 30 ms, as the local store). */
  windowMs?: number;
  heartbeatMs?: number;
  leaseMs?: number;
  /** Reaper period (default 5000; 0 = no reaper, for tests of read-time filtering). */
  reapMs?: number;
  reapLockMs?: number;
  onError?: (error: Error, where: string) => void;
  /** Traces Redis commands made inside a traced operation (lib/cluster/redis.ts). */
  telemetry?: Telemetry;
}

export interface RedisPresence extends Presence {
  /** This incarnation's node id (changes when the node re-asserts). */
  nodeId(): string;
  /** The topic's presences across the cluster: the synced replica, or a filtered read from Redis (no dead node's entries). */
  snapshot(topic: string): Promise<Presences>;
  /** Readiness: the command connection answers. */
  ping(): Promise<void>;
  /** One heartbeat and one reaper pass now (tests, and after a reconnect). */
  tick(): Promise<void>;
  /** Stops heartbeats (a test's way to let the lease expire); the reaper keeps running. */
  pauseHeartbeat(): void;
  /** Untracks every local entry (leave diffs), drops the lease, closes the connections. */
  close(): Promise<void>;
}

interface Local {
  key: string;
  meta: Meta;
}

interface Replica {
  state: TopicState;
  listeners: Set<DiffListener>;
  /** Resolves when the snapshot is in; set while (re)syncing, with the diffs that arrived meanwhile. */
  sync: Promise<void> | undefined;
  buffer: Wire[] | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The node (incarnation) of each entry, so a snapshot can hide the entries of nodes whose lease expired. */
  nodeOf: Map<string, string>;
}

interface Wire {
  v: number;
  node: string;
  kind: "change" | "reap";
  joins: Presences;
  leaves: Presences;
}

export async function createRedisPresence(options: RedisPresenceOptions): Promise<RedisPresence> {
  const base = `rt:${options.prefix ?? "hypercast"}:`;
  const windowMs = options.windowMs ?? 30;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const leaseMs = options.leaseMs ?? 15_000;
  const reapMs = options.reapMs ?? 5000;
  const reapLockMs = options.reapLockMs ?? 30_000;
  const report = options.onError ?? (() => {});
  const name = (options.name ?? undefined)?.replaceAll("|", "_");
  const onError = (error: Error) => report(error, "redis");

  const [cmd, sub] = await Promise.all([
    connectRedis(options.url, { role: "command", onError, telemetry: options.telemetry }),
    connectRedis(options.url, { role: "subscriber", onError, telemetry: options.telemetry }),
  ]);
  type Scripts = {
    hc_track(h: string, pn: string, ch: string, field: string, entry: string, topic: string, diff: string, old: string): Promise<number>;
    hc_untrack(h: string, ch: string, field: string, diff: string): Promise<number>;
    hc_heartbeat(nodes: string, epoch: string, node: string, lease: number, expected: string, fresh: string): Promise<[number, string]>;
    hc_expired(nodes: string): Promise<string[]>;
    hc_snapshot(h: string, nodes: string): Promise<string[]>;
    hc_reap(pn: string, nodes: string, dead: string, me: string, base: string): Promise<number>;
  };
  const run = (script: keyof Scripts, ...args: (string | number)[]): Promise<unknown> =>
    (cmd as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script]!.call(cmd, ...args);
  const numkeys: Record<keyof Scripts, number> = { hc_track: 3, hc_untrack: 2, hc_heartbeat: 2, hc_expired: 1, hc_snapshot: 2, hc_reap: 2 };
  for (const [script, n] of Object.entries(numkeys)) cmd.defineCommand(script, { lua: scriptOf(script), numberOfKeys: n });

  let nodeId = createNodeId(name);
  let refPrefix = randomBytes(6).toString("base64url");
  let counter = 0;
  let epoch = "";
  const ownIncarnations = new Set<string>([nodeId]);
  const locals = new Map<string, Map<string, Local>>(); // topic → owner → entry
  const replicas = new Map<string, Replica>();
  let closed = false;
  let heartbeatPaused = false;
  // Script calls are fire-and-forget from the sync API; flush() and close() wait for them.
  const inflight = new Set<Promise<unknown>>();
  const keep = (p: Promise<unknown>, where: string) => {
    const tracked = p.catch((error: unknown) => report(error as Error, where)).finally(() => inflight.delete(tracked));
    inflight.add(tracked);
  };

  const hash = (topic: string) => `${base}p:${topic}`;
  const channel = (topic: string) => `${base}pd:${topic}`;
  const field = (node: string, ref: string) => `${node}|${ref}`;
  const wire = (joins: Presences, leaves: Presences) => JSON.stringify({ v: 1, node: nodeId, kind: "change", joins, leaves });

  // ---- the replica and its listeners -------------------------------------------------------

  function replicaOf(topic: string): Replica {
    let replica = replicas.get(topic);
    if (replica === undefined) replicas.set(topic, (replica = { state: createTopicState(), listeners: new Set(), sync: undefined, buffer: undefined, timer: undefined, nodeOf: new Map() }));
    return replica;
  }

  function changed(topic: string, replica: Replica): void {
    if (replica.timer === undefined) replica.timer = setTimeout(() => deliver(topic), windowMs);
  }

  function deliver(topic: string): void {
    const replica = replicas.get(topic);
    if (replica === undefined) return;
    clearTimeout(replica.timer);
    replica.timer = undefined;
    const diff = takeDiff(replica.state);
    if (diff !== undefined) for (const listener of [...replica.listeners]) listener(diff);
    forgetIfUnused(topic, replica);
  }

  function forgetIfUnused(topic: string, replica: Replica): void {
    if (replica.listeners.size === 0 && isEmpty(replica.state) && replica.timer === undefined) replicas.delete(topic);
  }

  function add(replica: Replica, node: string, key: string, meta: Meta): void {
    track(replica.state, meta.phx_ref, key, meta);
    if (node !== "") replica.nodeOf.set(meta.phx_ref, node);
  }

  function remove(replica: Replica, ref: string): boolean {
    replica.nodeOf.delete(ref);
    return untrack(replica.state, ref);
  }

  function apply(topic: string, replica: Replica, message: Wire, keepRefs?: Set<string>): void {
    let touched = false;
    for (const [key, { metas }] of Object.entries(message.joins)) {
      for (const meta of metas) if (!replica.state.byOwner.has(meta.phx_ref)) (add(replica, message.node, key, meta), (touched = true));
    }
    for (const { metas } of Object.values(message.leaves)) {
      for (const meta of metas) if (!keepRefs?.has(meta.phx_ref) && remove(replica, meta.phx_ref)) touched = true;
    }
    if (touched) changed(topic, replica);
  }

  sub.on("message", (ch: string, text: string) => {
    if (!ch.startsWith(`${base}pd:`)) return;
    const topic = ch.slice(base.length + 3);
    const replica = replicas.get(topic);
    if (replica === undefined || replica.listeners.size === 0) return;
    let message: Wire;
    try {
      message = JSON.parse(text) as Wire;
    } catch {
      return;
    }
    if (message.v !== 1) return;
    // Own changes were applied to the replica when they were made.
    if (message.kind === "change" && ownIncarnations.has(message.node)) return;
    if (replica.buffer !== undefined) replica.buffer.push(message);
    else apply(topic, replica, message);
  });

  /** SUBSCRIBE (acknowledged), filtered snapshot, reconcile, then the diffs that arrived meanwhile. */
  function resync(topic: string, replica: Replica): Promise<void> {
    replica.buffer ??= [];
    const sync = (async () => {
      await sub.subscribe(channel(topic));
      const flat = (await run("hc_snapshot", hash(topic), `${base}nodes`)) as string[];
      if (replicas.get(topic) !== replica || replica.listeners.size === 0) return;
      const seen = new Map<string, { key: string; meta: Meta }>();
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const entry = JSON.parse(flat[i + 1]!) as { key: string; meta: Meta };
        seen.set(entry.meta.phx_ref, entry);
        const fieldName = flat[i]!;
        replica.nodeOf.set(entry.meta.phx_ref, fieldName.slice(0, fieldName.lastIndexOf("|")));
      }
      const buffered = replica.buffer ?? [];
      replica.buffer = undefined;
      const joinedLater = new Set(buffered.flatMap((m) => Object.values(m.joins).flatMap((p) => p.metas.map((meta) => meta.phx_ref))));
      const localRefs = new Set([...(locals.get(topic)?.values() ?? [])].map((l) => l.meta.phx_ref));
      const joins: Presences = {};
      const leaves: Presences = {};
      for (const [ref, entry] of seen) (joins[entry.key] ??= { metas: [] }).metas.push(entry.meta), void ref;
      for (const [ref, { key, meta }] of replica.state.byOwner) if (!seen.has(ref) && !localRefs.has(ref)) (leaves[key] ??= { metas: [] }).metas.push(meta);
      apply(topic, replica, { v: 1, node: "", kind: "reap", joins, leaves }, joinedLater);
      for (const message of buffered) apply(topic, replica, message);
    })().finally(() => {
      if (replica.sync === sync) replica.sync = undefined;
    });
    replica.sync = sync;
    return sync;
  }

  // ---- liveness ----------------------------------------------------------------------------

  // One heartbeat at a time, each after the previous: two concurrent ones (the timer and a reconnect,
  // or tick()) would both see a lost lease and start two incarnations, leaving the first one's
  // entries to the reaper. While Redis is away each fails fast (no offline queue), so none pile up.
  let beating: Promise<void> = Promise.resolve();
  function heartbeat(): Promise<void> {
    const next = beating.then(beat1);
    beating = next.catch(() => {});
    return next;
  }

  async function beat1(): Promise<void> {
    const expected = epoch;
    const [ok, current] = (await run("hc_heartbeat", `${base}nodes`, `${base}epoch`, nodeId, leaseMs, expected, randomBytes(8).toString("hex"))) as [number, string];
    const epochChanged = expected !== "" && current !== expected;
    epoch = current;
    if (ok === 1) return;
    await reassert(epochChanged);
  }

  /** A new incarnation: the old one is reaped (by us, if nobody did), local entries re-tracked with new refs. */
  async function reassert(epochChanged: boolean): Promise<void> {
    const old = nodeId;
    nodeId = createNodeId(name);
    refPrefix = randomBytes(6).toString("base64url");
    ownIncarnations.add(nodeId);
    await run("hc_heartbeat", `${base}nodes`, `${base}epoch`, nodeId, leaseMs, "", randomBytes(8).toString("hex"));
    await reapNode(old);
    for (const [topic, owners] of locals) for (const [owner, { key, meta }] of owners) trackEntry(topic, owner, key, stripRef(meta), { replace: false });
    if (epochChanged) for (const [topic, replica] of replicas) if (replica.listeners.size > 0) void resync(topic, replica).catch((e: unknown) => report(e as Error, "resync"));
  }

  /** Node ids whose lease has expired; concurrent callers (a join storm) share one round trip. */
  let expiring: Promise<Set<string>> | undefined;
  function expiredNodes(): Promise<Set<string>> {
    expiring ??= (run("hc_expired", `${base}nodes`) as Promise<string[]>)
      .then((ids) => new Set(ids), () => new Set<string>())
      .finally(() => (expiring = undefined));
    return expiring;
  }

  async function reapNode(dead: string): Promise<void> {
    const lock = await cmd.set(`${base}reap:${dead}`, nodeId, "PX", reapLockMs, "NX");
    if (lock !== "OK") return;
    await run("hc_reap", `${base}pn:${dead}`, `${base}nodes`, dead, nodeId, base);
  }

  async function reap(): Promise<void> {
    const dead = (await run("hc_expired", `${base}nodes`)) as string[];
    for (const node of dead) if (node !== nodeId) await reapNode(node);
  }

  let beat: NodeJS.Timeout | undefined;
  let reaper: NodeJS.Timeout | undefined;
  function schedule(): void {
    beat = setTimeout(() => {
      if (!heartbeatPaused) keep(heartbeat(), "heartbeat");
      if (!closed) schedule();
    }, heartbeatMs);
  }
  function scheduleReap(): void {
    if (reapMs <= 0) return;
    reaper = setTimeout(() => {
      keep(reap(), "reap");
      if (!closed) scheduleReap();
    }, reapMs * (0.8 + Math.random() * 0.4));
  }
  await heartbeat();
  schedule();
  scheduleReap();
  // After a reconnect: renew the lease (re-asserting if we were reaped meanwhile) and re-sync, since diffs were missed.
  let connectedOnce = false;
  sub.on("ready", () => {
    if (!connectedOnce) return void (connectedOnce = true);
    keep(heartbeat(), "heartbeat");
    for (const [topic, replica] of replicas) if (replica.listeners.size > 0) keep(resync(topic, replica), "resync");
  });
  connectedOnce = sub.status === "ready";

  // ---- the Presence API --------------------------------------------------------------------

  function trackEntry(topic: string, owner: string, key: string, fields: Record<string, unknown>, how: { replace: boolean }): Meta {
    let owners = locals.get(topic);
    if (owners === undefined) locals.set(topic, (owners = new Map()));
    const previous = how.replace ? owners.get(owner) : undefined;
    const meta: Meta = { ...fields, phx_ref: `${refPrefix}${(counter++).toString(36)}` };
    if (previous !== undefined) meta["phx_ref_prev"] = previous.meta.phx_ref;
    owners.set(owner, { key, meta });
    const replica = replicaOf(topic);
    if (previous !== undefined) remove(replica, previous.meta.phx_ref);
    add(replica, nodeId, key, meta);
    changed(topic, replica);
    const joins = { [key]: { metas: [meta] } };
    const leaves = previous === undefined ? {} : { [previous.key]: { metas: [previous.meta] } };
    const oldField = previous === undefined ? "" : field(nodeId, previous.meta.phx_ref);
    keep(run("hc_track", hash(topic), `${base}pn:${nodeId}`, channel(topic), field(nodeId, meta.phx_ref), JSON.stringify({ key, meta }), topic, wire(joins, leaves), oldField), "track");
    return meta;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearTimeout(beat);
    clearTimeout(reaper);
    for (const [topic, owners] of locals) for (const owner of [...owners.keys()]) api.untrack(topic, owner);
    await api.flush();
    await cmd.zrem(`${base}nodes`, nodeId).catch(() => {});
    await cmd.del(`${base}pn:${nodeId}`).catch(() => {});
    for (const replica of replicas.values()) clearTimeout(replica.timer);
    replicas.clear();
    await Promise.all([closeRedis(cmd), closeRedis(sub)]);
  }

  const api: RedisPresence = {
    track(topic, owner, key, fields) {
      return trackEntry(topic, owner, key, fields, { replace: true });
    },
    untrack(topic, owner) {
      const owners = locals.get(topic);
      const entry = owners?.get(owner);
      if (owners === undefined || entry === undefined) return;
      owners.delete(owner);
      if (owners.size === 0) locals.delete(topic);
      const replica = replicas.get(topic);
      if (replica !== undefined && remove(replica, entry.meta.phx_ref)) changed(topic, replica);
      keep(run("hc_untrack", hash(topic), channel(topic), field(nodeId, entry.meta.phx_ref), wire({}, { [entry.key]: { metas: [entry.meta] } })), "untrack");
    },
    list(topic) {
      const replica = replicas.get(topic);
      return replica === undefined ? {} : list(replica.state);
    },
    subscribe(topic, listener) {
      const replica = replicaOf(topic);
      replica.listeners.add(listener);
      if (replica.listeners.size === 1 && !closed) keep(resync(topic, replica), "subscribe");
      return () => {
        replica.listeners.delete(listener);
        if (replica.listeners.size > 0 || replicas.get(topic) !== replica) return;
        // Nobody here listens: drop other nodes' entries silently, keep our own, stop receiving.
        const mine = new Set([...(locals.get(topic)?.values() ?? [])].map((l) => l.meta.phx_ref));
        for (const ref of [...replica.state.byOwner.keys()]) if (!mine.has(ref)) remove(replica, ref);
        takeDiff(replica.state);
        clearTimeout(replica.timer);
        replica.timer = undefined;
        replica.buffer = undefined;
        if (!closed) keep(sub.unsubscribe(channel(topic)), "unsubscribe");
        forgetIfUnused(topic, replica);
      };
    },
    async flush() {
      while (inflight.size > 0) await Promise.all([...inflight]);
      for (const topic of [...replicas.keys()]) deliver(topic);
    },
    nodeId: () => nodeId,
    async snapshot(topic) {
      const replica = replicas.get(topic);
      if (replica !== undefined && replica.listeners.size > 0) {
        while (replica.sync !== undefined) await replica.sync;
        // Read-time filtering (as the Redis read below does): a node whose lease expired is hidden at
        // once, before the reaper's leaves diff reaches this replica.
        const dead = await expiredNodes();
        const presences = list(replica.state);
        if (dead.size === 0) return presences;
        const live: Presences = {};
        for (const [key, { metas }] of Object.entries(presences)) {
          const kept = metas.filter((meta) => !dead.has(replica.nodeOf.get(meta.phx_ref) ?? ""));
          if (kept.length > 0) live[key] = { metas: kept };
        }
        return live;
      }
      const flat = (await run("hc_snapshot", hash(topic), `${base}nodes`)) as string[];
      const result: Presences = {};
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const { key, meta } = JSON.parse(flat[i + 1]!) as { key: string; meta: Meta };
        (result[key] ??= { metas: [] }).metas.push(meta);
      }
      return result;
    },
    async ping() {
      if (cmd.status !== "ready") throw new Error(`Redis is not connected (${cmd.status})`);
      await cmd.ping();
    },
    async tick() {
      await heartbeat();
      await reap();
    },
    pauseHeartbeat() {
      heartbeatPaused = true;
    },
    close,
  };
  return api;
}

function stripRef(meta: Meta): Record<string, unknown> {
  const { phx_ref: _ref, phx_ref_prev: _prev, ...fields } = meta;
  return fields;
}

function scriptOf(name: string): string {
  const scripts: Record<string, string> = { hc_track: TRACK, hc_untrack: UNTRACK, hc_heartbeat: HEARTBEAT, hc_expired: EXPIRED, hc_snapshot: SNAPSHOT, hc_reap: REAP };
  return scripts[name]!;
}
