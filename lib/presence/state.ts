/**
 * Presence state and diffs for one topic — the pure core of presence (no I/O, no clock, no
 * timers), after phoenix_pubsub's `Tracker.State`. Mutating for speed: tracking the 10,000th
 * socket must cost O(1), not a copy of 10,000 entries.
 *
 *     const state = createTopicState()
 *     track(state, "sock-1", "42", { phx_ref: "a1", online_at: "2026-01-01T00:00:00.000Z" })
 *     list(state)     // → { "42": { metas: [{ phx_ref: "a1", online_at: "…" }] } }
 *     takeDiff(state) // → { joins: { "42": { metas: [...] } }, leaves: {} }, then undefined until the next change
 *
 * An entry is (owner, key, meta): the owner is whoever tracked it (one socket's channel), the
 * key is what clients group by (the user id as a string), and the meta's `phx_ref` is the only
 * identity clients use, so it must be unique and identical in the join and the leave.
 *
 * Changes since the last `takeDiff` are coalesced into one diff that says, for every meta touched
 * in the window, where it ended: present → in `joins`, gone → in `leaves`, never both (clients
 * apply joins first, then leaves). An update (re-track by the same owner) is a join of the new
 * meta and a leave of the old one. The diff must be right for every subscriber, including one that
 * read `list` in the middle of the window and subscribed then (a socket's `presence_state`): so a
 * meta tracked and untracked within one window is still a leave (that reader holds it), and a meta
 * untracked and tracked again is still a join (that reader lacks it). To the others, a leave of a
 * meta they never held and a join of one they hold change nothing. The client's merge rules behind
 * this: docs/channels-protocol.md §7.
 */

export interface Meta {
  phx_ref: string;
  [field: string]: unknown;
}

export type Presences = Record<string, { metas: Meta[] }>;

export interface PresenceDiff {
  joins: Presences;
  leaves: Presences;
}

export interface Entry {
  key: string;
  meta: Meta;
}

export interface TopicState {
  /** key → owner → meta, in tracking order. */
  readonly byKey: Map<string, Map<string, Meta>>;
  readonly byOwner: Map<string, Entry>;
  /** phx_ref → entry, changes not yet taken. */
  readonly pendingJoins: Map<string, Entry>;
  readonly pendingLeaves: Map<string, Entry>;
}

export function createTopicState(): TopicState {
  return { byKey: new Map(), byOwner: new Map(), pendingJoins: new Map(), pendingLeaves: new Map() };
}

/** Tracks `owner` under `key`. Re-tracking an owner replaces its meta (an update). */
export function track(state: TopicState, owner: string, key: string, meta: Meta): void {
  if (state.byOwner.has(owner)) untrack(state, owner);
  let metas = state.byKey.get(key);
  if (metas === undefined) state.byKey.set(key, (metas = new Map()));
  metas.set(owner, meta);
  const entry = { key, meta };
  state.byOwner.set(owner, entry);
  state.pendingLeaves.delete(meta.phx_ref);
  state.pendingJoins.set(meta.phx_ref, entry);
}

/** Removes the owner's entry; returns whether there was one. */
export function untrack(state: TopicState, owner: string): boolean {
  const entry = state.byOwner.get(owner);
  if (entry === undefined) return false;
  state.byOwner.delete(owner);
  const metas = state.byKey.get(entry.key);
  metas?.delete(owner);
  if (metas !== undefined && metas.size === 0) state.byKey.delete(entry.key);
  state.pendingJoins.delete(entry.meta.phx_ref);
  state.pendingLeaves.set(entry.meta.phx_ref, entry);
  return true;
}

/** The `presence_state` payload: every key with all its metas. */
export function list(state: TopicState): Presences {
  const result: Presences = {};
  for (const [key, metas] of state.byKey) result[key] = { metas: [...metas.values()] };
  return result;
}

export function hasPendingDiff(state: TopicState): boolean {
  return state.pendingJoins.size > 0 || state.pendingLeaves.size > 0;
}

/** The changes since the last call, as one `presence_diff` (both keys always present), or undefined. */
export function takeDiff(state: TopicState): PresenceDiff | undefined {
  if (!hasPendingDiff(state)) return undefined;
  const diff: PresenceDiff = { joins: group(state.pendingJoins), leaves: group(state.pendingLeaves) };
  state.pendingJoins.clear();
  state.pendingLeaves.clear();
  return diff;
}

export function isEmpty(state: TopicState): boolean {
  return state.byOwner.size === 0 && !hasPendingDiff(state);
}

function group(entries: Map<string, Entry>): Presences {
  const result: Presences = {};
  for (const { key, meta } of entries.values()) {
    const slot = result[key];
    if (slot === undefined) result[key] = { metas: [meta] };
    else slot.metas.push(meta);
  }
  return result;
}
