/**
 * Fan-out streams: the native uWebSockets.js topics a socket subscribes to, and reference
 * counting for the upstream subscriptions (PubSub, presence diffs) that feed them.
 *
 * A channel topic has one stream per API version (`room:1|v2`), so a broadcast is rendered and
 * serialized once per version, never once per subscriber, and one presence stream (`room:1|presence`)
 * that audience sockets do not join.
 *
 *     versionStream("room:1", 2) // → "room:1|v2"
 *     const counted = createRefCount((topic) => pubsub.subscribe(topic, relay))
 *     counted.retain("room:1"); counted.release("room:1") // the last release unsubscribes
 */
import type { ApiVersion } from "../versions.ts";

export function versionStream(topic: string, version: ApiVersion): string {
  return `${topic}|v${version}`;
}

export function presenceStream(topic: string): string {
  return `${topic}|presence`;
}

export interface RefCount {
  retain(key: string): void;
  release(key: string): void;
  /** Drops every upstream subscription. */
  clear(): void;
}

export function createRefCount(open: (key: string) => () => void): RefCount {
  const entries = new Map<string, { count: number; close: () => void }>();
  return {
    retain(key) {
      const entry = entries.get(key);
      if (entry !== undefined) entry.count += 1;
      else entries.set(key, { count: 1, close: open(key) });
    },
    release(key) {
      const entry = entries.get(key);
      if (entry === undefined) return;
      entry.count -= 1;
      if (entry.count > 0) return;
      entries.delete(key);
      entry.close();
    },
    clear() {
      for (const entry of entries.values()) entry.close();
      entries.clear();
    },
  };
}
