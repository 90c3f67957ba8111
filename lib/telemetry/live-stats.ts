/**
 * Live statistics for the dashboard, as a telemetry handler of the event catalogue (events.ts):
 * counters for the current interval, a duration histogram for HTTP and one for queries, the open
 * socket gauge, and one small record per topic with local subscribers. `take()` turns them into
 * per-second figures and starts the next interval.
 *
 * Cost: O(1) per event (a counter, a histogram slot, a Map lookup); `take()` is O(topics) — one
 * pass that picks the top `topTopics` with a small insertion-sorted list — plus one presence
 * count per listed topic (O(K), read from the presence replica, not counted from diffs, so
 * presences that existed before this node saw the topic count too), and never walks sockets.
 * A topic is recorded only once a socket of this node has joined it, so client events on
 * arbitrary topic names cannot grow the table. The `ignoreTopics` (the dashboard's own
 * `admin:dashboard`) count in nothing but the open-socket gauge: a page watching does not show
 * up as joins, deliveries or a busy topic.
 *
 *     const stats = createLiveStats({ presences: (topic) => presence.count(topic) })
 *     telemetry.attach(stats.handle)
 *     const figures = stats.take(1000) // every second
 */
import type { HttpFigures, SocketFigures, TopicFigures, TopicRow } from "../dashboard/snapshot.ts";
import type { TelemetryEvent } from "./events.ts";
import { createDurationHistogram } from "./quantiles.ts";

export interface LiveStatsOptions {
  /** How many of the busiest topics each snapshot lists (default 10). */
  topTopics?: number;
  /**
   * The close code of a slow consumer's disconnect (the realtime tier's `CLOSE.SLOW_CONSUMER`, given by
   * the wiring: telemetry sits below the web tiers and imports none). Without it none is counted.
   */
  slowConsumerCode?: number;
  /** The presence entries of a topic as this node's replica holds them, read for the listed topics only (default: none, 0). */
  presences?: (topic: string) => number;
  /** Topics left out of the topic table and of the join, message and delivery rates (the dashboard's own). */
  ignoreTopics?: ReadonlySet<string>;
}

export interface QueryFigures {
  queries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors_per_s: number;
}

export interface LiveFigures {
  http: HttpFigures;
  sockets: SocketFigures;
  topics: TopicFigures;
  queries: QueryFigures;
}

export interface LiveStats {
  readonly handle: (event: TelemetryEvent) => void;
  /** The figures of the interval that just ended (`elapsedMs` long), and a fresh interval. */
  take(elapsedMs: number): LiveFigures;
}

interface TopicStat {
  subscribers: number;
  /** Deliveries and client events during the current interval. */
  activity: number;
}

export function createLiveStats(options: LiveStatsOptions = {}): LiveStats {
  const topN = options.topTopics ?? 10;
  const presencesOf = options.presences ?? (() => 0);
  const ignored = options.ignoreTopics ?? new Set<string>();
  const httpDurations = createDurationHistogram();
  const queryDurations = createDurationHistogram();
  const topics = new Map<string, TopicStat>();
  let byVersion = new Map<string, number>();
  let requests = 0;
  let clientErrors = 0;
  let serverErrors = 0;
  let queries = 0;
  let queryErrors = 0;
  let open = 0;
  let joins = 0;
  let joinErrors = 0;
  let messagesIn = 0;
  let deliveries = 0;
  let slowConsumers = 0;

  function handle(e: TelemetryEvent): void {
    switch (e.event) {
      case "http.request.stop": {
        requests += 1;
        const version = e.metadata.api_version === undefined ? "none" : String(e.metadata.api_version);
        byVersion.set(version, (byVersion.get(version) ?? 0) + 1);
        if (e.metadata.status >= 500) serverErrors += 1;
        else if (e.metadata.status >= 400) clientErrors += 1;
        httpDurations.record(e.measurements.duration_ms);
        return;
      }
      case "db.query.stop":
        queries += 1;
        if (e.metadata.outcome === "error") queryErrors += 1;
        queryDurations.record(e.measurements.duration_ms);
        return;
      case "socket.open":
        open += 1;
        return;
      case "socket.close":
        open -= 1;
        if (e.metadata.code === options.slowConsumerCode) slowConsumers += 1;
        return;
      case "channel.join.stop": {
        if (ignored.has(e.metadata.topic)) return;
        if (e.metadata.outcome === "error") {
          joinErrors += 1;
          return;
        }
        joins += 1;
        const stat = topics.get(e.metadata.topic);
        if (stat === undefined) topics.set(e.metadata.topic, { subscribers: 1, activity: 0 });
        else stat.subscribers += 1;
        return;
      }
      case "channel.leave": {
        const stat = topics.get(e.metadata.topic);
        if (stat !== undefined) stat.subscribers -= 1;
        return;
      }
      case "channel.message.in": {
        if (ignored.has(e.metadata.topic)) return;
        messagesIn += 1;
        const stat = topics.get(e.metadata.topic);
        if (stat !== undefined) stat.activity += 1;
        return;
      }
      case "broadcast.fanout": {
        if (ignored.has(e.metadata.topic)) return;
        deliveries += e.measurements.deliveries;
        const stat = topics.get(e.metadata.topic);
        if (stat !== undefined) stat.activity += e.measurements.deliveries;
        return;
      }
      case "presence.change":
      case "channel.message.out":
      case "cluster.publish.dropped":
        return;
    }
  }

  function take(elapsedMs: number): LiveFigures {
    const perSecond = (n: number) => round((n * 1000) / Math.max(1, elapsedMs));
    const top: { topic: string; stat: TopicStat; activity: number }[] = [];
    for (const [topic, stat] of topics) {
      if (stat.subscribers <= 0) {
        topics.delete(topic); // deleting the current entry while iterating a Map is safe
        continue;
      }
      const activity = stat.activity;
      stat.activity = 0;
      if (top.length === topN && !busier(activity, stat.subscribers, top[topN - 1]!)) continue;
      // Insertion into a list of at most topN: O(topN) for the few topics that qualify.
      let i = Math.min(top.length, topN - 1);
      while (i > 0 && busier(activity, stat.subscribers, top[i - 1]!)) i--;
      top.splice(i, 0, { topic, stat, activity });
      if (top.length > topN) top.pop();
    }
    const rows: TopicRow[] = top.map(({ topic, stat, activity }) => ({
      topic,
      subscribers: stat.subscribers,
      presences: presencesOf(topic),
      rate: perSecond(activity),
    }));
    const figures: LiveFigures = {
      http: {
        rps: perSecond(requests),
        by_version: Object.fromEntries([...byVersion].map(([version, n]) => [version, perSecond(n)])),
        p50_ms: httpDurations.percentile(0.5),
        p99_ms: httpDurations.percentile(0.99),
        client_errors_per_s: perSecond(clientErrors),
        server_errors_per_s: perSecond(serverErrors),
      },
      sockets: {
        open,
        joins_per_s: perSecond(joins),
        join_errors_per_s: perSecond(joinErrors),
        messages_in_per_s: perSecond(messagesIn),
        deliveries_per_s: perSecond(deliveries),
        slow_consumer_disconnects: slowConsumers,
      },
      topics: { count: topics.size, top: rows },
      queries: {
        queries_per_s: perSecond(queries),
        p50_ms: queryDurations.percentile(0.5),
        p99_ms: queryDurations.percentile(0.99),
        errors_per_s: perSecond(queryErrors),
      },
    };
    httpDurations.reset();
    queryDurations.reset();
    byVersion = new Map();
    requests = clientErrors = serverErrors = queries = queryErrors = 0;
    joins = joinErrors = messagesIn = deliveries = slowConsumers = 0;
    return figures;
  }

  return { handle, take };
}

function busier(activity: number, subscribers: number, than: { activity: number; stat: TopicStat }): boolean {
  return activity > than.activity || (activity === than.activity && subscribers > than.stat.subscribers);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
