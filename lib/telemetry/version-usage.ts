/**
 * Who still calls the deprecated versions: a telemetry handler fed by `http.request.stop` that
 * keeps, for each deprecated version, the top callers (user ids) and their request counts over a
 * sliding window — so a team sees whom a sunset would break before it does. The dashboard shows
 * it (lib/dashboard/feed.ts); anonymous requests are counted apart, as one total. A request
 * answered 410 because its version is withdrawn (a brownout, the sunset) counts as a call of that
 * version too (`gone_version`): a brownout shows whom it broke.
 *
 * Bounded memory and O(1) per request: the window is a ring of `buckets` slices (default ten of
 * one minute); each slice holds one Space-Saving summary per version (top-k.ts, `capacity`
 * counters), so memory is versions × buckets × capacity whatever the number of users. Reading
 * merges the slices still inside the window, O(buckets × capacity), once per dashboard tick.
 * Counts are Space-Saving's estimates: never below the truth, above it by at most `error`.
 *
 *     const usage = createVersionUsage({ versions: config.versions.deprecated })
 *     telemetry.attach(usage.handle)
 *     usage.top(1, 10) // → { version: 1, window_s: 600, requests: 1200, anonymous: 40, callers: [{ user_id: 7, requests: 900, error: 0 }, …] }
 */
import type { ApiVersion } from "../versions.ts";
import type { TelemetryEvent } from "./events.ts";
import { createSpaceSaving, type SpaceSaving } from "./top-k.ts";

export interface VersionUsageOptions {
  /** The versions whose callers are counted (the deprecated ones). */
  versions: Iterable<ApiVersion>;
  /** Length of one slice of the window (default 60,000 ms). */
  bucketMs?: number;
  /** Slices in the window (default 10: ten minutes). */
  buckets?: number;
  /** Counters per version and slice (default 100). */
  capacity?: number;
  /** Milliseconds clock (default Date.now); tests pass their own. */
  now?: () => number;
}

export interface Caller {
  user_id: number;
  /** Requests in the window (an upper bound; at least `requests − error`). */
  requests: number;
  error: number;
}

export interface VersionCallers {
  version: ApiVersion;
  window_s: number;
  /** Every request served in this version within the window, authenticated or not. */
  requests: number;
  /** Requests without an authenticated user. */
  anonymous: number;
  callers: Caller[];
}

export interface VersionUsage {
  /** The telemetry handler: `telemetry.attach(usage.handle)`. */
  readonly handle: (event: TelemetryEvent) => void;
  /** The `limit` heaviest callers of the version within the window, heaviest first. */
  top(version: ApiVersion, limit: number): VersionCallers;
  readonly versions: readonly ApiVersion[];
}

interface Slice {
  /** Which slice of time (now / bucketMs, floored) this ring cell holds. */
  epoch: number;
  users: SpaceSaving<number>;
  requests: number;
  anonymous: number;
}

export function createVersionUsage(options: VersionUsageOptions): VersionUsage {
  const bucketMs = options.bucketMs ?? 60_000;
  const size = options.buckets ?? 10;
  const capacity = options.capacity ?? 100;
  const now = options.now ?? Date.now;
  const versions = [...new Set(options.versions)];
  const rings = new Map<ApiVersion, Slice[]>(versions.map((v) => [v, []]));
  const fresh = (epoch: number): Slice => ({
    epoch,
    users: createSpaceSaving<number>(capacity),
    requests: 0,
    anonymous: 0,
  });

  /** The ring cell of the current slice, recycled when it still holds one from a lap ago. */
  function current(ring: Slice[], epoch: number): Slice {
    const at = epoch % size;
    let slice = ring[at];
    if (slice === undefined || slice.epoch !== epoch) ring[at] = slice = fresh(epoch);
    return slice;
  }

  return {
    versions,
    handle(e) {
      if (e.event !== "http.request.stop") return;
      const version = e.metadata.api_version ?? e.metadata.gone_version;
      if (version === undefined) return;
      const ring = rings.get(version);
      if (ring === undefined) return;
      const slice = current(ring, Math.floor(now() / bucketMs));
      slice.requests += 1;
      if (e.metadata.user_id === undefined) slice.anonymous += 1;
      else slice.users.add(e.metadata.user_id);
    },
    top(version, limit) {
      const epoch = Math.floor(now() / bucketMs);
      const merged = new Map<number, Caller>();
      let requests = 0;
      let anonymous = 0;
      for (const slice of rings.get(version) ?? []) {
        if (slice === undefined || slice.epoch <= epoch - size || slice.epoch > epoch) continue;
        requests += slice.requests;
        anonymous += slice.anonymous;
        for (const { item, count, error } of slice.users.entries()) {
          const caller = merged.get(item);
          if (caller === undefined) merged.set(item, { user_id: item, requests: count, error });
          else {
            caller.requests += count;
            caller.error += error;
          }
        }
      }
      const callers = [...merged.values()]
        .sort((a, b) => b.requests - a.requests || a.user_id - b.user_id)
        .slice(0, limit);
      return { version, window_s: (size * bucketMs) / 1000, requests, anonymous, callers };
    },
  };
}
