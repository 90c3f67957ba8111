/**
 * Presence: who is in a topic right now. The realtime tier tracks one entry per joined socket
 * (key = the user id as a string, so two devices of one user are two metas under one key) and
 * relays the coalesced diffs to its subscribers; REST reads `snapshot(topic)`.
 *
 *     const presence = createLocalPresence({ windowMs: 30 })
 *     const off = presence.subscribe("room:1", (diff) => send("presence_diff", diff))
 *     const meta = presence.track("room:1", "socket-7", "42", { online_at: new Date().toISOString() })
 *     presence.list("room:1") // → { "42": { metas: [{ phx_ref: meta.phx_ref, online_at: "…" }] } }
 *     presence.count("room:1") // → 1
 *     presence.untrack("room:1", "socket-7") // → a leave diff to subscribers, within windowMs
 *     await presence.flush()                 // deliver pending diffs now (shutdown)
 *     await presence.snapshot("room:1")      // the cluster-wide state (REST, and a join's presence_state)
 *     await presence.close()
 *
 * This file is the core, after phoenix_pubsub's Tracker: the per-topic state (./state.ts), phx_refs,
 * the diffs coalesced over `windowMs`, listeners. When clustered, an adapter (./redis.ts) carries
 * what crosses nodes, as lib/pubsub/index.ts does for broadcasts: it writes this node's changes to
 * the shared store, hands other nodes' changes to the core (`PresenceLink.apply`), and replaces a
 * topic's view after it may have missed some (`reset`). Each node's view of a followed topic is a
 * replica: own entries apply at once, others' as they arrive, and `list` + later diffs is always
 * consistent, whichever store is behind it.
 */
import { randomBytes } from "node:crypto";
import {
  createTopicState,
  isEmpty,
  list,
  takeDiff,
  track,
  untrack,
  type Entry,
  type Meta,
  type PresenceDiff,
  type Presences,
  type TopicState,
} from "./state.ts";

export type { Entry, Meta, PresenceDiff, Presences } from "./state.ts";

export type DiffListener = (diff: PresenceDiff) => void;

export interface Presence {
  /** Tracks `owner` (e.g. a socket's id) under `key` in `topic`; re-tracking replaces its meta. Returns the meta with its fresh `phx_ref`. */
  track(topic: string, owner: string, key: string, meta: Record<string, unknown>): Meta;
  /** Removes the owner's entry from the topic (nothing happens when there is none). */
  untrack(topic: string, owner: string): void;
  /** The topic's presences as this node sees them now, in the shape of a `presence_state` payload. */
  list(topic: string): Presences;
  /** How many entries (metas) `list(topic)` holds, in O(1): the dashboard reads it for its busiest topics. */
  count(topic: string): number;
  /** Receives the topic's coalesced diffs (`joins` and `leaves` always present); returns the unsubscribe function. */
  subscribe(topic: string, listener: DiffListener): () => void;
  /** Delivers every pending diff now. */
  flush(): Promise<void>;
  /**
   * The topic's presences across the cluster. On a followed topic: this node's view once it is
   * synced with the cluster (waiting at most `syncTimeoutMs`: while the shared store is away, the
   * view this node has), so a node's first joiner of a topic sees everyone.
   */
  snapshot(topic: string): Promise<Presences>;
  /** Untracks what this node still tracks (leave diffs), stops timers and releases connections. */
  close(): Promise<void>;
}

/** An entry with the node (incarnation) it belongs to: "" for this node's own. */
export interface Tracked extends Entry {
  origin: string;
}

/**
 * What an adapter does: carry presence between nodes. Five methods, none of them local state.
 * It never throws from `publish`: a write that fails is the adapter's to re-assert or retract
 * once its store is back.
 */
export interface PresenceAdapter {
  /** The core has a first listener for the topic: receive other nodes' changes, then `reset` it with the cluster's entries. */
  interest(topic: string): void;
  /** No listener left here: other nodes' changes to the topic are not needed. */
  disinterest(topic: string): void;
  /** This node's change (already applied here) for the other nodes. */
  publish(topic: string, diff: PresenceDiff): void;
  /**
   * The topic's presences. `replica` (a followed topic) gives this node's synced entries at the
   * moment it is called: the adapter hides those of nodes it knows to be dead. Without it, the
   * adapter reads the shared store.
   */
  read(topic: string, replica: (() => Tracked[]) | undefined): Promise<Presences>;
  /** Waits for writes in flight, leaves the cluster, releases connections. */
  close(): Promise<void>;
}

/** What the core offers its adapter. */
export interface PresenceLink {
  /** Other nodes' changes: joins not yet held are added (from `origin`), leaves of held refs removed. */
  apply(topic: string, diff: PresenceDiff, origin: string): void;
  /** A fresh read of a followed topic: the view becomes `entries` plus this node's own; the difference reaches listeners as a diff. */
  reset(topic: string, entries: readonly Tracked[]): void;
  /** This node's own entries, per topic (what it must re-assert). */
  owned(): Map<string, Entry[]>;
  /** New phx_refs for every own entry (a new incarnation): listeners get a leave and a join for each. */
  renew(): void;
}

export type PresenceAdapterFactory = (link: PresenceLink) => PresenceAdapter;

export interface PresenceOptions {
  /** How long changes are collected into one diff per topic (default 30 ms; 0 = next tick). */
  windowMs?: number;
  /** How long `snapshot` waits for a followed topic to sync with the cluster (default 1000 ms). */
  syncTimeoutMs?: number;
}

interface Topic {
  /** Every entry of the view, owned by its phx_ref. */
  readonly state: TopicState;
  readonly origin: Map<string, string>;
  readonly listeners: Set<DiffListener>;
  timer: NodeJS.Timeout | undefined;
  synced: boolean;
  readonly waiters: Set<() => void>;
}

/**
 * The Presence core, with an optional adapter for other nodes.
 *
 *     const presence = createPresence({ windowMs: 30 }, (link) => myAdapter(link))
 */
export function createPresence(options: PresenceOptions = {}, adapterFactory?: PresenceAdapterFactory): Presence {
  const windowMs = options.windowMs ?? 30;
  const syncTimeoutMs = options.syncTimeoutMs ?? 1000;
  const topics = new Map<string, Topic>();
  /** topic → owner → own entry. */
  const owners = new Map<string, Map<string, Entry>>();
  /** The phx_refs of those entries (refs are unique across topics). */
  const ownRefs = new Set<string>();
  // Unique across processes and restarts: a random node prefix and a counter.
  const node = randomBytes(6).toString("base64url");
  let counter = 0;
  let closed = false;
  const nextRef = () => `${node}${(counter++).toString(36)}`;

  function topicOf(topic: string): Topic {
    let t = topics.get(topic);
    if (t === undefined) {
      t = {
        state: createTopicState(),
        origin: new Map(),
        listeners: new Set(),
        timer: undefined,
        synced: adapter === undefined,
        waiters: new Set(),
      };
      topics.set(topic, t);
    }
    return t;
  }

  function deliver(topic: string): void {
    const t = topics.get(topic);
    if (t === undefined) return;
    clearTimeout(t.timer);
    t.timer = undefined;
    const diff = takeDiff(t.state);
    if (diff !== undefined) for (const listener of [...t.listeners]) listener(diff);
    if (t.listeners.size === 0 && isEmpty(t.state)) topics.delete(topic);
  }

  function changed(topic: string, t: Topic): void {
    t.timer ??= setTimeout(() => deliver(topic), windowMs);
  }

  function add(t: Topic, key: string, meta: Meta, origin: string): boolean {
    if (t.state.byOwner.has(meta.phx_ref)) return false;
    track(t.state, meta.phx_ref, key, meta);
    if (origin !== "") t.origin.set(meta.phx_ref, origin);
    return true;
  }

  function remove(t: Topic, ref: string): boolean {
    t.origin.delete(ref);
    return untrack(t.state, ref);
  }

  const link: PresenceLink = {
    apply(topic, diff, origin) {
      const t = topics.get(topic);
      if (t === undefined || t.listeners.size === 0) return;
      let touched = false;
      for (const [key, { metas }] of Object.entries(diff.joins))
        for (const meta of metas) touched = add(t, key, meta, origin) || touched;
      for (const { metas } of Object.values(diff.leaves))
        for (const meta of metas) if (!isOwn(topic, meta.phx_ref)) touched = remove(t, meta.phx_ref) || touched;
      if (touched) changed(topic, t);
    },
    reset(topic, entries) {
      const t = topics.get(topic);
      if (t === undefined || t.listeners.size === 0) return;
      const fresh = new Set(entries.map((e) => e.meta.phx_ref));
      for (const ref of [...t.state.byOwner.keys()]) if (!fresh.has(ref) && !isOwn(topic, ref)) remove(t, ref);
      for (const { key, meta, origin } of entries) add(t, key, meta, origin);
      changed(topic, t);
      t.synced = true;
      for (const wake of t.waiters) wake();
      t.waiters.clear();
    },
    owned() {
      return new Map([...owners].map(([topic, byOwner]) => [topic, [...byOwner.values()]]));
    },
    renew() {
      for (const [topic, byOwner] of owners) {
        const t = topicOf(topic);
        for (const [owner, { key, meta }] of byOwner) {
          const { phx_ref: _ref, phx_ref_prev: _prev, ...fields } = meta;
          const fresh: Meta = { ...fields, phx_ref: nextRef() };
          byOwner.set(owner, { key, meta: fresh });
          ownRefs.delete(meta.phx_ref);
          ownRefs.add(fresh.phx_ref);
          remove(t, meta.phx_ref);
          add(t, key, fresh, "");
        }
        changed(topic, t);
      }
    },
  };

  /** Own entries are this node's truth: no other node's leave or stale read removes them. */
  const isOwn = (_topic: string, ref: string): boolean => ownRefs.has(ref);

  const adapter = adapterFactory?.(link);

  /** Resolves when the topic is synced, or after `syncTimeoutMs` (the view this node has is the best there is). */
  function synced(t: Topic): Promise<void> {
    if (t.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        t.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, syncTimeoutMs);
      t.waiters.add(wake);
    });
  }

  const presence: Presence = {
    track(topic, owner, key, fields) {
      let byOwner = owners.get(topic);
      if (byOwner === undefined) owners.set(topic, (byOwner = new Map()));
      const previous = byOwner.get(owner);
      const meta: Meta = { ...fields, phx_ref: nextRef() };
      if (previous !== undefined) meta["phx_ref_prev"] = previous.meta.phx_ref;
      byOwner.set(owner, { key, meta });
      if (previous !== undefined) ownRefs.delete(previous.meta.phx_ref);
      ownRefs.add(meta.phx_ref);
      const t = topicOf(topic);
      if (previous !== undefined) remove(t, previous.meta.phx_ref);
      add(t, key, meta, "");
      changed(topic, t);
      adapter?.publish(topic, {
        joins: { [key]: { metas: [meta] } },
        leaves: previous === undefined ? {} : { [previous.key]: { metas: [previous.meta] } },
      });
      return meta;
    },
    untrack(topic, owner) {
      const byOwner = owners.get(topic);
      const entry = byOwner?.get(owner);
      if (byOwner === undefined || entry === undefined) return;
      byOwner.delete(owner);
      ownRefs.delete(entry.meta.phx_ref);
      if (byOwner.size === 0) owners.delete(topic);
      const t = topics.get(topic);
      if (t !== undefined && remove(t, entry.meta.phx_ref)) changed(topic, t);
      adapter?.publish(topic, { joins: {}, leaves: { [entry.key]: { metas: [entry.meta] } } });
    },
    list(topic) {
      const t = topics.get(topic);
      return t === undefined ? {} : list(t.state);
    },
    count(topic) {
      return topics.get(topic)?.state.byOwner.size ?? 0;
    },
    subscribe(topic, listener) {
      const t = topicOf(topic);
      t.listeners.add(listener);
      if (t.listeners.size === 1 && !closed) adapter?.interest(topic);
      return () => {
        t.listeners.delete(listener);
        if (t.listeners.size > 0 || topics.get(topic) !== t) return;
        if (adapter !== undefined) {
          // Nobody here listens: forget other nodes' entries silently, keep our own, stop receiving.
          for (const ref of [...t.state.byOwner.keys()]) if (!isOwn(topic, ref)) remove(t, ref);
          t.synced = false;
          if (!closed) adapter.disinterest(topic);
        }
        takeDiff(t.state);
        clearTimeout(t.timer);
        t.timer = undefined;
        if (isEmpty(t.state)) topics.delete(topic);
      };
    },
    async flush() {
      for (const topic of [...topics.keys()]) deliver(topic);
    },
    async snapshot(topic) {
      const t = topics.get(topic);
      if (adapter === undefined) return t === undefined ? {} : list(t.state);
      if (t === undefined || t.listeners.size === 0) return adapter.read(topic, undefined);
      await synced(t);
      const entries = (): Tracked[] =>
        [...t.state.byOwner.values()].map(({ key, meta }) => ({ key, meta, origin: t.origin.get(meta.phx_ref) ?? "" }));
      return adapter.read(topic, entries);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const [topic, byOwner] of [...owners])
        for (const owner of [...byOwner.keys()]) presence.untrack(topic, owner);
      await presence.flush();
      for (const t of topics.values()) clearTimeout(t.timer);
      topics.clear();
      await adapter?.close();
    },
  };
  return presence;
}

/** The single-node Presence: in-process state, diffs coalesced per topic over `windowMs`. */
export function createLocalPresence(options: PresenceOptions = {}): Presence {
  return createPresence(options);
}
