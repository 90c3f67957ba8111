/**
 * The page's model, pure (no DOM, tested under Node): the snapshots received per node, lined up
 * in time slots of one interval, and the cluster's figures derived from them — sums of rates and
 * gauges, the worst node's latencies, callers and topics merged across nodes.
 *
 *     const model = createModel(180)
 *     model.addHistory(history); model.add(snapshot)
 *     model.series("cluster") // → columns for the charts: time, sockets, rps by version, …
 *     model.latest("cluster") // → the figures marked with data-metric
 */
import type { DashboardHistory, NodeSnapshot, TopicRow } from "../snapshot.ts";

export type Scope = "cluster" | string;

export interface Figures {
  sockets: number;
  http_rps: number;
  http_by_version: Record<string, number>;
  http_p50_ms: number;
  http_p99_ms: number;
  http_4xx_per_s: number;
  http_5xx_per_s: number;
  joins_per_s: number;
  messages_in_per_s: number;
  deliveries_per_s: number;
  slow_consumer_disconnects: number;
  topics: number;
  db_in_use: number;
  db_waiting: number;
  db_queries_per_s: number;
  db_p99_ms: number;
  cpu_percent: number;
  rss_bytes: number;
  heap_used_bytes: number;
  loop_p99_ms: number;
}

export interface CallerRow {
  version: number;
  user_id: number;
  requests: number;
}

export interface Model {
  addHistory(history: DashboardHistory): void;
  add(snapshot: NodeSnapshot): void;
  /** Node ids with a snapshot in the kept window, sorted. */
  nodes(): string[];
  /** The newest snapshot of each node. */
  newest(): NodeSnapshot[];
  /** Figures of the newest complete slot for the scope (a node id or "cluster"). */
  latest(scope: Scope): Figures | undefined;
  /** One figure over time: x (seconds) and y columns aligned by slot. */
  series(scope: Scope, pick: (f: Figures) => number): [number[], number[]];
  /** One figure of each node in the scope over time: x (seconds) and one column per node (null where it sent nothing). */
  perNode(
    scope: Scope,
    pick: (s: NodeSnapshot) => number,
  ): { nodes: string[]; data: [number[], ...(number | null)[][]] };
  /** API versions seen in the kept window, sorted. */
  versions(): string[];
  callers(scope: Scope, limit: number): CallerRow[];
  topics(scope: Scope, limit: number): TopicRow[];
}

export function createModel(slots: number): Model {
  /** slot (floor(at / interval)) → node → snapshot */
  const bySlot = new Map<number, Map<string, NodeSnapshot>>();
  const newestOf = new Map<string, NodeSnapshot>();
  let intervalMs = 1000;

  function add(snapshot: NodeSnapshot): void {
    intervalMs = snapshot.interval_ms;
    const slot = Math.floor(snapshot.at / intervalMs);
    let nodes = bySlot.get(slot);
    if (nodes === undefined) bySlot.set(slot, (nodes = new Map()));
    nodes.set(snapshot.node, snapshot);
    const previous = newestOf.get(snapshot.node);
    if (previous === undefined || previous.at <= snapshot.at) newestOf.set(snapshot.node, snapshot);
    const oldest = slot - slots;
    for (const key of bySlot.keys()) if (key < oldest) bySlot.delete(key);
    for (const [node, s] of newestOf) if (Math.floor(s.at / intervalMs) < oldest) newestOf.delete(node);
  }

  function sorted(): number[] {
    return [...bySlot.keys()].sort((a, b) => a - b);
  }

  function figuresAt(slot: number, scope: Scope): Figures | undefined {
    const nodes = bySlot.get(slot);
    if (nodes === undefined) return undefined;
    const members =
      scope === "cluster" ? [...nodes.values()] : [nodes.get(scope)].filter((s): s is NodeSnapshot => s !== undefined);
    return members.length === 0 ? undefined : combine(members);
  }

  return {
    add,
    addHistory(history) {
      for (const points of Object.values(history.nodes)) for (const snapshot of points) add(snapshot);
    },
    nodes: () => [...newestOf.keys()].sort(),
    newest: () => [...newestOf.values()].sort((a, b) => a.node.localeCompare(b.node)),
    latest(scope) {
      if (scope !== "cluster") {
        const one = newestOf.get(scope);
        return one === undefined ? undefined : combine([one]);
      }
      const keys = sorted();
      const newest = keys[keys.length - 1];
      const before = keys[keys.length - 2];
      if (newest === undefined) return undefined;
      // The newest slot may still wait for other nodes' snapshots: then the one before it is the complete one.
      const complete = before !== undefined && bySlot.get(newest)!.size < bySlot.get(before)!.size ? before : newest;
      return figuresAt(complete, "cluster");
    },
    series(scope, pick) {
      const xs: number[] = [];
      const ys: number[] = [];
      for (const slot of sorted()) {
        const f = figuresAt(slot, scope);
        if (f === undefined) continue;
        xs.push((slot * intervalMs) / 1000);
        ys.push(pick(f));
      }
      return [xs, ys];
    },
    perNode(scope, pick) {
      const nodes = scope === "cluster" ? [...newestOf.keys()].sort() : [scope];
      const xs: number[] = [];
      const columns: (number | null)[][] = nodes.map(() => []);
      for (const slot of sorted()) {
        const at = bySlot.get(slot)!;
        if (!nodes.some((n) => at.has(n))) continue;
        xs.push((slot * intervalMs) / 1000);
        nodes.forEach((n, i) => {
          const s = at.get(n);
          columns[i]!.push(s === undefined ? null : pick(s));
        });
      }
      return { nodes, data: [xs, ...columns] };
    },
    versions() {
      const seen = new Set<string>();
      for (const nodes of bySlot.values())
        for (const s of nodes.values()) for (const v of Object.keys(s.http.by_version)) seen.add(v);
      return [...seen].sort();
    },
    callers(scope, limit) {
      const merged = new Map<string, CallerRow>();
      for (const s of inScope(newestOf, scope)) {
        for (const group of s.callers) {
          for (const c of group.callers) {
            const key = `${group.version}:${c.user_id}`;
            const row = merged.get(key);
            if (row === undefined)
              merged.set(key, { version: group.version, user_id: c.user_id, requests: c.requests });
            else row.requests += c.requests;
          }
        }
      }
      return [...merged.values()].sort((a, b) => b.requests - a.requests || a.user_id - b.user_id).slice(0, limit);
    },
    topics(scope, limit) {
      const merged = new Map<string, TopicRow>();
      for (const s of inScope(newestOf, scope)) {
        for (const t of s.topics.top) {
          const row = merged.get(t.topic);
          // Subscribers and rates are per node (sum); presences are each node's view of the whole topic (max).
          if (row === undefined) merged.set(t.topic, { ...t });
          else
            merged.set(t.topic, {
              topic: t.topic,
              subscribers: row.subscribers + t.subscribers,
              presences: Math.max(row.presences, t.presences),
              rate: row.rate + t.rate,
            });
        }
      }
      return [...merged.values()].sort((a, b) => b.rate - a.rate || b.subscribers - a.subscribers).slice(0, limit);
    },
  };
}

function inScope(newestOf: Map<string, NodeSnapshot>, scope: Scope): NodeSnapshot[] {
  if (scope === "cluster") return [...newestOf.values()];
  const one = newestOf.get(scope);
  return one === undefined ? [] : [one];
}

/** The figures of several nodes at one moment: rates and gauges add up, latencies take the worst node. */
export function combine(nodes: readonly NodeSnapshot[]): Figures {
  const sum = (pick: (s: NodeSnapshot) => number | null) => nodes.reduce((total, s) => total + (pick(s) ?? 0), 0);
  const max = (pick: (s: NodeSnapshot) => number) => nodes.reduce((worst, s) => Math.max(worst, pick(s)), 0);
  const byVersion: Record<string, number> = {};
  for (const s of nodes)
    for (const [v, rps] of Object.entries(s.http.by_version)) byVersion[v] = round((byVersion[v] ?? 0) + rps);
  return {
    sockets: sum((s) => s.sockets.open),
    http_rps: round(sum((s) => s.http.rps)),
    http_by_version: byVersion,
    http_p50_ms: max((s) => s.http.p50_ms),
    http_p99_ms: max((s) => s.http.p99_ms),
    http_4xx_per_s: round(sum((s) => s.http.client_errors_per_s)),
    http_5xx_per_s: round(sum((s) => s.http.server_errors_per_s)),
    joins_per_s: round(sum((s) => s.sockets.joins_per_s)),
    messages_in_per_s: round(sum((s) => s.sockets.messages_in_per_s)),
    deliveries_per_s: round(sum((s) => s.sockets.deliveries_per_s)),
    slow_consumer_disconnects: sum((s) => s.sockets.slow_consumer_disconnects),
    topics: sum((s) => s.topics.count),
    db_in_use: sum((s) => s.db.in_use),
    db_waiting: sum((s) => s.db.waiting),
    db_queries_per_s: round(sum((s) => s.db.queries_per_s)),
    db_p99_ms: max((s) => s.db.p99_ms),
    cpu_percent: round(sum((s) => s.process.cpu_percent)),
    rss_bytes: sum((s) => s.process.rss_bytes),
    heap_used_bytes: sum((s) => s.process.heap_used_bytes),
    loop_p99_ms: max((s) => s.process.loop_p99_ms),
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
