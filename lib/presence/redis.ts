/**
 * The Redis presence adapter: what crosses nodes, behind the presence core (./index.ts), as
 * lib/pubsub/redis.ts is behind the PubSub core. The core keeps the state, refs, diffs and
 * listeners; this file keeps Redis in step with this node's entries and hands other nodes' changes
 * to the core. The design (keys, lease, reaper, re-assert, bounds): docs/cluster.md ("Presence").
 *
 *     const presence = await createRedisPresence({ url, name: "n1", windowMs: 30 })
 *     presence.subscribe("room:1", listener) // SUBSCRIBE rt:<p>:pd:room:1, then a read → core.reset
 *     presence.track("room:1", "sock-7", "42", { online_at }) // core now; CHANGE script (HSET + PUBLISH)
 *     await presence.snapshot("room:1")      // the synced view, nodes past their lease hidden
 *     presence.health()                      // "ok" | "unavailable", for /health and metrics
 *     await presence.close()                 // leaves, then the lease is dropped
 *
 * - Store: ./redis/scripts.ts (keys and scripts). Each write is one script: state change and its
 *   diff's PUBLISH together, refused when this incarnation has no lease.
 * - Liveness: a lease in `rt:<p>:nodes` renewed every `heartbeatMs` by Redis TIME; a reaper every
 *   `reapMs` (jittered) reaps expired nodes under a `SET NX PX` lock. A heartbeat that finds its
 *   lease gone or expired, or the epoch changed (Redis lost its data), starts a new incarnation:
 *   the old one is reaped, the core renews every own phx_ref, and everything is re-asserted.
 * - Redis trouble: commands never queue and time out after `commandTimeoutMs`, so a stopped Redis
 *   costs a bounded wait, never a hang. A write that failed marks this node dirty; the next
 *   heartbeat that succeeds reconciles every topic (RECONCILE: re-assert what is missing, retract
 *   what left), so presence converges within one lease of Redis coming back. After a reconnect (or
 *   a read that failed) each followed topic is read again, since diffs may have been missed.
 * - Diffs received are checked before use; a malformed one is dropped and reported (`onInvalid`).
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { createNodeId } from "../cluster/node-id.ts";
import { Unavailable } from "../errors.ts";
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import type { Telemetry } from "../telemetry/index.ts";
import {
  createPresence,
  type Entry,
  type Presence,
  type PresenceAdapter,
  type PresenceDiff,
  type PresenceLink,
  type Presences,
  type Tracked,
} from "./index.ts";
import { CHANGE, EXPIRED, HEARTBEAT, REAP, RECONCILE, SNAPSHOT } from "./redis/scripts.ts";
import { parseDiff, type Wire } from "./redis/wire.ts";

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
  /** How long one Redis command may take before it counts as failed (default: heartbeatMs, within 1000–2000). */
  commandTimeoutMs?: number;
  /** How long a snapshot waits for a followed topic to sync (default 1000). */
  syncTimeoutMs?: number;
  onError?: (error: Error, where: string) => void;
  /** A message on a presence channel that is not a diff this version understands (dropped). */
  onInvalid?: (channel: string, reason: string) => void;
  /** Traces Redis commands made inside a traced operation (lib/cluster/redis.ts). */
  telemetry?: Telemetry;
  /** Tests: receives the controls of this node (see PresenceControls). */
  controls?: (controls: PresenceControls) => void;
}

export interface RedisPresence extends Presence {
  /** This incarnation's node id (changes when the node re-asserts). */
  nodeId(): string;
  /** "ok" while the connections are up and the last heartbeat answered within the lease. */
  health(): "ok" | "unavailable";
}

/** What tests drive by hand (`RedisPresenceOptions.controls`); production never needs them. */
export interface PresenceControls {
  /** One heartbeat (with its reconcile) and one reaper pass now. */
  tick(): Promise<void>;
  /** Stops heartbeats (a test's way to let the lease expire); the reaper keeps running. */
  pauseHeartbeat(): void;
}

type Script = "hc_change" | "hc_reconcile" | "hc_heartbeat" | "hc_expired" | "hc_snapshot" | "hc_reap";
const SCRIPTS: Record<Script, { lua: string; numberOfKeys: number }> = {
  hc_change: { lua: CHANGE, numberOfKeys: 4 },
  hc_reconcile: { lua: RECONCILE, numberOfKeys: 4 },
  hc_heartbeat: { lua: HEARTBEAT, numberOfKeys: 2 },
  hc_expired: { lua: EXPIRED, numberOfKeys: 1 },
  hc_snapshot: { lua: SNAPSHOT, numberOfKeys: 2 },
  hc_reap: { lua: REAP, numberOfKeys: 2 },
};

export async function createRedisPresence(options: RedisPresenceOptions): Promise<RedisPresence> {
  const heartbeatMs = options.heartbeatMs ?? 5000;
  // Long enough for a loaded machine, short enough that a stopped Redis is noticed within a lease.
  const commandTimeout = options.commandTimeoutMs ?? Math.min(Math.max(heartbeatMs, 1000), 2000);
  const report = options.onError ?? (() => {});
  const onError = (error: Error) => report(error, "redis");
  const [cmd, sub] = await Promise.all([
    connectRedis(options.url, {
      role: "command",
      onError,
      commandTimeoutMs: commandTimeout,
      telemetry: options.telemetry,
    }),
    connectRedis(options.url, { role: "subscriber", onError, telemetry: options.telemetry }),
  ]);
  for (const [name, script] of Object.entries(SCRIPTS)) cmd.defineCommand(name, script);
  let adapter!: RedisAdapter;
  const core = createPresence(
    { windowMs: options.windowMs ?? 30, syncTimeoutMs: options.syncTimeoutMs ?? 1000 },
    (link) => (adapter = createAdapter(link, cmd, sub, options)),
  );
  try {
    await adapter.start();
  } catch (error) {
    await core.close();
    throw error;
  }
  options.controls?.({ tick: adapter.tick, pauseHeartbeat: adapter.pauseHeartbeat });
  return { ...core, nodeId: adapter.nodeId, health: adapter.health };
}

interface RedisAdapter extends PresenceAdapter, PresenceControls {
  start(): Promise<void>;
  nodeId(): string;
  health(): "ok" | "unavailable";
}

function createAdapter(link: PresenceLink, cmd: Redis, sub: Redis, options: RedisPresenceOptions): RedisAdapter {
  const base = `rt:${options.prefix ?? "hypercast"}:`;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const leaseMs = options.leaseMs ?? 15_000;
  const reapMs = options.reapMs ?? 5000;
  const reapLockMs = options.reapLockMs ?? 30_000;
  const report = options.onError ?? (() => {});
  const invalid = options.onInvalid ?? (() => {});
  const name = options.name?.replaceAll("|", "_");
  const hash = (topic: string) => `${base}p:${topic}`;
  const channel = (topic: string) => `${base}pd:${topic}`;
  const nodes = `${base}nodes`;
  const run = (script: Script, ...args: (string | number)[]): Promise<unknown> =>
    (cmd as unknown as Record<Script, (...a: (string | number)[]) => Promise<unknown>>)[script].apply(cmd, args);

  let nodeId = createNodeId(name);
  let epoch = "";
  const ownIncarnations = new Set([nodeId]);
  /**
   * Followed topics. `buffer` holds the diffs that arrive while the topic is being read; `reads`
   * numbers the reads, so that of two reads in flight only the later one is used (see `sync`).
   */
  const followed = new Map<string, { buffer: Wire[] | undefined; reads: number }>();
  const unsynced = new Set<string>();
  let dirty = false;
  let closed = false;
  let paused = false;
  let lastBeat = Number.NEGATIVE_INFINITY;
  /** Writes in flight: `close` waits for them (each ends within the command timeout). */
  const inflight = new Set<Promise<unknown>>();
  const keep = (p: Promise<unknown>, where: string): void => {
    const tracked = p.catch((error: unknown) => report(error as Error, where)).finally(() => inflight.delete(tracked));
    inflight.add(tracked);
  };
  /** Work nobody waits for (a SUBSCRIBE waits for Redis as long as it takes): failures are reported. */
  const background = (p: Promise<unknown>, where: string): void =>
    void p.catch((error: unknown) => report(error as Error, where));
  const entryJson = (e: Entry) => JSON.stringify({ key: e.key, meta: e.meta });
  const field = (ref: string) => `${nodeId}|${ref}`;

  sub.on("message", (ch: string, text: string) => {
    if (!ch.startsWith(`${base}pd:`)) return;
    const topic = ch.slice(base.length + 3);
    const parsed = parseDiff(text);
    if (typeof parsed === "string") return invalid(ch, parsed);
    const state = followed.get(topic);
    if (state === undefined) return;
    // Own changes were applied by the core when they were made.
    if (parsed.kind === "change" && ownIncarnations.has(parsed.node)) return;
    if (state.buffer !== undefined) state.buffer.push(parsed);
    else link.apply(topic, parsed, parsed.kind === "change" ? parsed.node : "");
  });

  /**
   * SUBSCRIBE (acknowledged), read the live entries, reset the core's view, then the diffs that
   * arrived meanwhile. Reads of one topic may overlap (a reconnect and an epoch change both ask for
   * one): only the latest is used. An earlier read can answer after diffs that Redis published
   * after it, since diffs and replies come over different connections; resetting to it would bring
   * back an entry whose leave was already applied, a ghost. So diffs stay buffered until the
   * latest read answers, and that read is newer than every diff applied before it.
   */
  async function sync(topic: string): Promise<void> {
    const state = followed.get(topic);
    if (state === undefined) return;
    state.buffer ??= [];
    const read = ++state.reads;
    const latest = () => followed.get(topic) === state && state.reads === read;
    try {
      await sub.subscribe(channel(topic));
      // This node's own entries come from the core alone: what Redis holds of them may be a write
      // that failed (a socket that left while Redis was away), which the reconcile retracts.
      const entries = parseSnapshot((await run("hc_snapshot", hash(topic), nodes)) as string[]).filter(
        (e) => !ownIncarnations.has(e.origin),
      );
      if (!latest()) return;
      unsynced.delete(topic);
      const buffered = state.buffer ?? [];
      state.buffer = undefined;
      link.reset(topic, entries);
      for (const message of buffered) link.apply(topic, message, message.kind === "change" ? message.node : "");
    } catch (error) {
      if (latest()) (unsynced.add(topic), (state.buffer = undefined));
      throw error;
    }
  }

  /** A change of this node: one CHANGE script. A failure leaves this node dirty until a reconcile. */
  function write(topic: string, diff: PresenceDiff): void {
    const deletes = Object.values(diff.leaves).flatMap((p) => p.metas.map((m) => field(m.phx_ref)));
    const sets = Object.entries(diff.joins).flatMap(([key, p]) =>
      p.metas.flatMap((meta) => [field(meta.phx_ref), entryJson({ key, meta })]),
    );
    const wire = JSON.stringify({ v: 1, node: nodeId, kind: "change", joins: diff.joins, leaves: diff.leaves });
    const done = run(
      "hc_change",
      hash(topic),
      `${base}pn:${nodeId}`,
      channel(topic),
      nodes,
      nodeId,
      topic,
      wire,
      deletes.length,
      ...deletes,
      ...sets,
    );
    keep(
      done.then(
        (result) => void (result === -1 && (dirty = true)),
        (error: unknown) => {
          dirty = true;
          throw error;
        },
      ),
      "write",
    );
  }

  /** Makes Redis hold exactly this node's entries, in every topic it has or had entries in. */
  async function reconcile(): Promise<void> {
    dirty = false;
    try {
      const topics = new Set((await cmd.smembers(`${base}pn:${nodeId}`)) as string[]);
      // Read the entries and send every script in one turn: later writes follow them on this connection.
      const owned = link.owned();
      for (const topic of owned.keys()) topics.add(topic);
      await Promise.all(
        [...topics].map(async (topic) => {
          const pairs = (owned.get(topic) ?? []).flatMap((e) => [field(e.meta.phx_ref), entryJson(e)]);
          await run("hc_reconcile", hash(topic), `${base}pn:${nodeId}`, channel(topic), nodes, nodeId, topic, ...pairs);
        }),
      );
    } catch (error) {
      dirty = true;
      throw error;
    }
  }

  // One heartbeat at a time, each after the previous: two concurrent ones (the timer and a
  // reconnect, or tick()) would both see a lost lease and start two incarnations.
  let beating: Promise<void> = Promise.resolve();
  let queued = 0;
  function heartbeat(): Promise<void> {
    queued += 1;
    const next = beating.then(beat).finally(() => (queued -= 1));
    beating = next.catch(() => {});
    return next;
  }

  async function beat(): Promise<void> {
    const expected = epoch;
    const [ok, current] = (await run(
      "hc_heartbeat",
      nodes,
      `${base}epoch`,
      nodeId,
      leaseMs,
      expected,
      randomBytes(8).toString("hex"),
    )) as [number, string];
    lastBeat = performance.now();
    epoch = current;
    // Redis lost its data: every followed topic's view may hold entries that are gone.
    if (expected !== "" && current !== expected) for (const topic of followed.keys()) unsynced.add(topic);
    if (ok !== 1) await reassert();
    if (dirty) await reconcile();
    for (const topic of [...unsynced]) background(sync(topic), "resync");
  }

  /** A new incarnation: a fresh lease, the old one reaped (by us, if nobody did), every own entry under a new ref. */
  async function reassert(): Promise<void> {
    const old = nodeId;
    nodeId = createNodeId(name);
    ownIncarnations.add(nodeId);
    link.renew();
    dirty = true;
    await run("hc_heartbeat", nodes, `${base}epoch`, nodeId, leaseMs, "", randomBytes(8).toString("hex"));
    await reapNode(old);
  }

  async function reapNode(dead: string): Promise<void> {
    const lock = await cmd.set(`${base}reap:${dead}`, nodeId, "PX", reapLockMs, "NX");
    if (lock === "OK") await run("hc_reap", `${base}pn:${dead}`, nodes, dead, nodeId, base);
  }

  async function reap(): Promise<void> {
    for (const node of (await run("hc_expired", nodes)) as string[]) if (node !== nodeId) await reapNode(node);
  }

  /** Nodes whose lease has expired; concurrent callers (a join storm) share one round trip; none known while Redis is away. */
  let expiring: Promise<Set<string>> | undefined;
  function expiredNodes(): Promise<Set<string>> {
    expiring ??= (run("hc_expired", nodes) as Promise<string[]>)
      .then(
        (ids) => new Set(ids),
        () => new Set<string>(),
      )
      .finally(() => (expiring = undefined));
    return expiring;
  }

  let beatTimer: NodeJS.Timeout | undefined;
  let reapTimer: NodeJS.Timeout | undefined;
  function schedule(): void {
    beatTimer = setTimeout(() => {
      // While Redis hangs, a heartbeat lasts the command timeout: never queue the timer's behind it.
      if (!paused && queued === 0) background(heartbeat(), "heartbeat");
      if (!closed) schedule();
    }, heartbeatMs);
  }
  let reaping = false;
  function scheduleReap(): void {
    if (reapMs <= 0) return;
    reapTimer = setTimeout(
      () => {
        if (!reaping) {
          reaping = true;
          background(
            reap().finally(() => (reaping = false)),
            "reap",
          );
        }
        if (!closed) scheduleReap();
      },
      reapMs * (0.8 + Math.random() * 0.4),
    );
  }

  return {
    async start() {
      await heartbeat();
      schedule();
      scheduleReap();
      // After a reconnect: renew the lease (re-asserting if reaped meanwhile) and read every followed topic again.
      sub.on("ready", () => {
        background(heartbeat(), "heartbeat");
        for (const topic of followed.keys()) background(sync(topic), "resync");
      });
    },
    interest(topic) {
      if (!followed.has(topic)) followed.set(topic, { buffer: undefined, reads: 0 });
      background(sync(topic), "subscribe");
    },
    disinterest(topic) {
      followed.delete(topic);
      unsynced.delete(topic);
      if (!closed) background(sub.unsubscribe(channel(topic)), "unsubscribe");
    },
    publish: write,
    async read(topic, replica) {
      if (replica !== undefined) {
        // Read-time filtering: a node whose lease expired is hidden at once, before the reaper's leaves arrive.
        const dead = await expiredNodes();
        const live = replica().filter((e) => !dead.has(e.origin));
        return group(live);
      }
      try {
        return group(parseSnapshot((await run("hc_snapshot", hash(topic), nodes)) as string[]));
      } catch (error) {
        throw new Unavailable(`presence cannot be read while Redis is unreachable: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
    async close() {
      closed = true;
      clearTimeout(beatTimer);
      clearTimeout(reapTimer);
      while (inflight.size > 0) await Promise.all([...inflight]);
      await cmd.zrem(nodes, nodeId).catch(() => {});
      await cmd.del(`${base}pn:${nodeId}`).catch(() => {});
      await Promise.all([closeRedis(cmd), closeRedis(sub)]);
    },
    nodeId: () => nodeId,
    health: () =>
      cmd.status === "ready" &&
      sub.status === "ready" &&
      performance.now() - lastBeat < Math.max(leaseMs, 2 * heartbeatMs)
        ? "ok"
        : "unavailable",
    async tick() {
      await heartbeat();
      await reap();
    },
    pauseHeartbeat() {
      paused = true;
    },
  };
}

/** The SNAPSHOT script's flat [field, entry, …] as entries with their node. */
function parseSnapshot(flat: string[]): Tracked[] {
  const entries: Tracked[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const fieldName = flat[i]!;
    const { key, meta } = JSON.parse(flat[i + 1]!) as Entry;
    entries.push({ key, meta, origin: fieldName.slice(0, fieldName.lastIndexOf("|")) });
  }
  return entries;
}

function group(entries: readonly Entry[]): Presences {
  const result: Presences = {};
  for (const { key, meta } of entries) (result[key] ??= { metas: [] }).metas.push(meta);
  return result;
}
