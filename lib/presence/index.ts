/**
 * Presence: who is in a topic right now. The realtime tier tracks one entry per joined socket
 * (key = the user id as a string, so two devices of one user are two metas under one key) and
 * relays the coalesced diffs to its subscribers; REST reads `list(topic)`.
 *
 *     const presence = createLocalPresence({ windowMs: 30 })
 *     const off = presence.subscribe("room:1", (diff) => send("presence_diff", diff))
 *     const meta = presence.track("room:1", "socket-7", "42", { online_at: new Date().toISOString() })
 *     presence.list("room:1") // → { "42": { metas: [{ phx_ref: meta.phx_ref, online_at: "…" }] } }
 *     presence.untrack("room:1", "socket-7") // → a leave diff to subscribers, within windowMs
 *     await presence.flush()                 // deliver pending diffs now (shutdown)
 *     await presence.snapshot("room:1")      // the cluster-wide state (REST, and a join's presence_state)
 *     await presence.close()
 *
 * Two implementations: this single-node store, and the clustered one (./redis.ts), where Redis
 * is the source of truth and each node reads a local replica; changes travel as diffs, as in
 * Phoenix.Tracker. `list` is this node's replica (synchronous); `snapshot` waits until the
 * replica is synced with the cluster, so a node's first joiner of a topic sees everyone.
 */
import { randomBytes } from "node:crypto";
import { createTopicState, isEmpty, list, takeDiff, track, untrack, type Meta, type PresenceDiff, type Presences, type TopicState } from "./state.ts";

export type { Meta, PresenceDiff, Presences } from "./state.ts";

export type DiffListener = (diff: PresenceDiff) => void;

export interface Presence {
  /** Tracks `owner` (e.g. a socket's id) under `key` in `topic`; re-tracking replaces its meta. Returns the meta with its fresh `phx_ref`. */
  track(topic: string, owner: string, key: string, meta: Record<string, unknown>): Meta;
  /** Removes the owner's entry from the topic (nothing happens when there is none). */
  untrack(topic: string, owner: string): void;
  /** The topic's presences, in the shape of a `presence_state` payload. */
  list(topic: string): Presences;
  /** Receives the topic's coalesced diffs (`joins` and `leaves` always present); returns the unsubscribe function. */
  subscribe(topic: string, listener: DiffListener): () => void;
  /** Delivers every pending diff now. */
  flush(): Promise<void>;
  /** The topic's presences across the cluster, once this node's view is synced (local store: `list`). */
  snapshot(topic: string): Promise<Presences>;
  /** Untracks what this node still tracks (leave diffs), stops timers and releases connections. */
  close(): Promise<void>;
}

export interface LocalPresenceOptions {
  /** How long changes are collected into one diff per topic (default 30 ms; 0 = next tick). */
  windowMs?: number;
}

/** The single-node Presence: in-process state, diffs coalesced per topic over `windowMs`. */
export function createLocalPresence(options: LocalPresenceOptions = {}): Presence {
  const windowMs = options.windowMs ?? 30;
  const topics = new Map<string, TopicState>();
  const listeners = new Map<string, Set<DiffListener>>();
  const timers = new Map<string, NodeJS.Timeout>();
  // Unique across processes and restarts: a random node prefix and a counter.
  const node = randomBytes(6).toString("base64url");
  let counter = 0;

  function flushTopic(topic: string): void {
    const timer = timers.get(topic);
    if (timer !== undefined) clearTimeout(timer);
    timers.delete(topic);
    const state = topics.get(topic);
    if (state === undefined) return;
    const diff = takeDiff(state);
    if (isEmpty(state)) topics.delete(topic);
    if (diff === undefined) return;
    for (const listener of [...(listeners.get(topic) ?? [])]) listener(diff);
  }

  function changed(topic: string): void {
    if (!timers.has(topic)) timers.set(topic, setTimeout(() => flushTopic(topic), windowMs));
  }

  return {
    track(topic, owner, key, fields) {
      let state = topics.get(topic);
      if (state === undefined) topics.set(topic, (state = createTopicState()));
      const meta: Meta = { ...fields, phx_ref: `${node}${(counter++).toString(36)}` };
      track(state, owner, key, meta);
      changed(topic);
      return meta;
    },
    untrack(topic, owner) {
      const state = topics.get(topic);
      if (state !== undefined && untrack(state, owner)) changed(topic);
    },
    list(topic) {
      const state = topics.get(topic);
      return state === undefined ? {} : list(state);
    },
    subscribe(topic, listener) {
      let set = listeners.get(topic);
      if (set === undefined) listeners.set(topic, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(topic) === set) listeners.delete(topic);
      };
    },
    async flush() {
      for (const topic of [...timers.keys()]) flushTopic(topic);
    },
    async snapshot(topic) {
      const state = topics.get(topic);
      return state === undefined ? {} : list(state);
    },
    async close() {
      for (const topic of [...timers.keys()]) flushTopic(topic);
      topics.clear();
      listeners.clear();
    },
  };
}
