/**
 * One socket's view of a presence-tracked topic (pure), kept as Phoenix's `Presence.syncState` /
 * `syncDiff` keep it but reduced to what a join storm needs: how many distinct metas (by `phx_ref`)
 * the socket currently sees. Refs are interned per process, so thousands of sockets that see the
 * same thousands of refs share one table and each keeps a bitset.
 *
 *     const refs = createRefTable(); const view = createPresenceView(refs)
 *     view.state({ "7": { metas: [{ phx_ref: "a" }, { phx_ref: "b" }] } })   // view.size === 2
 *     view.diff({ joins: {}, leaves: { "7": { metas: [{ phx_ref: "a" }] } } }) // view.size === 1
 */

export interface RefTable {
  index(ref: string): number;
}

export function createRefTable(): RefTable {
  const table = new Map<string, number>();
  return {
    index(ref) {
      let i = table.get(ref);
      if (i === undefined) table.set(ref, (i = table.size));
      return i;
    },
  };
}

type Presences = Record<string, { metas?: Array<{ phx_ref?: unknown }> } | undefined>;

export interface PresenceView {
  readonly size: number;
  state(presences: unknown): void;
  diff(diff: unknown): void;
}

function refsOf(presences: unknown): string[] {
  const refs: string[] = [];
  if (typeof presences !== "object" || presences === null) return refs;
  for (const entry of Object.values(presences as Presences)) {
    for (const meta of entry?.metas ?? []) if (typeof meta.phx_ref === "string") refs.push(meta.phx_ref);
  }
  return refs;
}

export function createPresenceView(refs: RefTable): PresenceView {
  let bits = new Uint8Array(64);
  let size = 0;
  const set = (ref: string, on: boolean) => {
    const i = refs.index(ref);
    if (i >> 3 >= bits.length) {
      const grown = new Uint8Array(Math.max(bits.length * 2, (i >> 3) + 1));
      grown.set(bits);
      bits = grown;
    }
    const mask = 1 << (i & 7);
    const had = (bits[i >> 3]! & mask) !== 0;
    if (on && !had) {
      bits[i >> 3]! |= mask;
      size++;
    } else if (!on && had) {
      bits[i >> 3]! &= ~mask;
      size--;
    }
  };
  return {
    get size() {
      return size;
    },
    state(presences) {
      bits.fill(0);
      size = 0;
      for (const ref of refsOf(presences)) set(ref, true);
    },
    diff(diff) {
      if (typeof diff !== "object" || diff === null) return;
      const { joins, leaves } = diff as { joins?: unknown; leaves?: unknown };
      for (const ref of refsOf(joins)) set(ref, true);
      for (const ref of refsOf(leaves)) set(ref, false);
    },
  };
}
