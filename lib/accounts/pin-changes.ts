/**
 * Recent pin changes (private to accounts): for each user whose pinned API version changed
 * recently enough that a socket token minted before the change could still be unexpired, the new
 * pin and when it changed. Kept in memory so the upgrade path serves a socket that names no
 * `api_version` in its user's pin as it stands now, without a database read; loaded at boot from
 * `users.api_version_changed_at` and updated by every change, this node's and (through the PubSub)
 * every other node's — the same design as the revoked-session set (revocations.ts).
 *
 *     const pins = createPinChanges(86_400_000)
 *     pins.set(42, 2, Date.now())
 *     pins.current(42, tokenIssuedAtMs) // → 2 while a token minted before the change is still valid
 *
 * A change newer than the token (or in the same second: a token's issue time has second precision)
 * wins over the pin the token carries; an older one is already in it. An entry lives one
 * socket-token lifetime after its change: every token minted before it has expired by then.
 */
import type { ApiVersion } from "../versions.ts";

export interface PinChanges {
  /** Records that `userId`'s pin became `pin` at `changedAtMs` (epoch ms); an older change than the one held is ignored. */
  set(userId: number, pin: ApiVersion, changedAtMs: number): void;
  /** The user's pin when it changed at or after `issuedAtMs` (a socket token's issue time), else undefined. */
  current(userId: number, issuedAtMs: number): ApiVersion | undefined;
  size(): number;
}

export function createPinChanges(ttlMs: number): PinChanges {
  // Insertion order ≈ change order, so the sweep stops at the first live entry.
  const changes = new Map<number, { pin: ApiVersion; changedAtMs: number }>();
  function sweep(nowMs: number): void {
    for (const [id, change] of changes) {
      if (change.changedAtMs + ttlMs > nowMs) return;
      changes.delete(id);
    }
  }
  return {
    set(userId, pin, changedAtMs) {
      sweep(Date.now());
      const held = changes.get(userId);
      if (held !== undefined && held.changedAtMs > changedAtMs) return;
      changes.delete(userId);
      changes.set(userId, { pin, changedAtMs });
    },
    current(userId, issuedAtMs) {
      const change = changes.get(userId);
      return change !== undefined && change.changedAtMs >= issuedAtMs ? change.pin : undefined;
    },
    size: () => changes.size,
  };
}
