/**
 * Redis connections for the cluster adapters (ioredis), made one way: connected before use,
 * errors observed (an unobserved ioredis "error" event is logged to stderr by ioredis itself),
 * and the reconnect policy that matches what the connection is for.
 *
 *     const pub = await connectRedis(url, { role: "publisher" })   // offline queue off: fail fast, caller drops
 *     const sub = await connectRedis(url, { role: "subscriber" })  // queues (un)subscribes while away
 *     await closeRedis(pub)
 *
 * Given a Telemetry, every command runs inside `telemetry.span("redis.command.start")`: a CLIENT
 * span when tracing and inside a traced operation (a broadcast's PUBLISH), nothing otherwise.
 */
import type { Redis, RedisOptions } from "ioredis";
import type { Telemetry } from "../telemetry/index.ts";

export type RedisRole = "publisher" | "subscriber" | "command" | "limiter";

export interface ConnectOptions {
  role: RedisRole;
  /** Connection name shown by CLIENT LIST (`hypercast:<role>:<node>`). */
  name?: string;
  /** Called with connection errors (they repeat while Redis is away); default: ignored. */
  onError?: (error: Error) => void;
  /** How long a command may wait for its reply before it fails (default: no limit). */
  commandTimeoutMs?: number;
  /** How long the first connection may take (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Traces commands (see above). */
  telemetry?: Telemetry;
}

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  // Broadcasts while Redis is away are dropped and counted, never queued (README "Running a cluster");
  // a PUBLISH in flight when the link breaks is not resent after reconnect (at most once).
  publisher: { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 },
  // Only (UN)SUBSCRIBEs travel here, at most one per topic: queue them while away, keep them
  // until Redis is back, and let ioredis re-subscribe every channel after a reconnect.
  subscriber: { enableOfflineQueue: true, autoResubscribe: true, maxRetriesPerRequest: null },
  // Presence scripts: fail fast while away, and never resend after a reconnect (the caller
  // reconciles when Redis is back, from its own state, rather than replaying stale writes).
  command: { enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
  // Rate-limit counters (rate-limiter-flexible's advice for ioredis): no offline queue, so an
  // outage fails fast into the in-memory insurance limiter instead of holding requests.
  limiter: { enableOfflineQueue: false, maxRetriesPerRequest: 1 },
};

export async function connectRedis(url: string, options: ConnectOptions): Promise<Redis> {
  // Loaded with the first connection: a node without REDIS_URL never holds ioredis.
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    // Reconnect quickly at first, then every second: an outage is noticed and ended within ~1 s.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    ...(options.name === undefined ? {} : { connectionName: options.name }),
    ...ROLE_OPTIONS[options.role],
  });
  redis.on("error", options.onError ?? (() => {}));
  if (options.commandTimeoutMs !== undefined) expireCommands(redis, options.commandTimeoutMs);
  const telemetry = options.telemetry;
  // Only with a tracer installed (it is, before any connection is made): otherwise commands go straight out.
  if (telemetry !== undefined && telemetry.tracing()) {
    // ioredis has no command hook; every command, pipelined ones included, passes through sendCommand.
    const send = redis.sendCommand.bind(redis);
    const connection = options.role;
    redis.sendCommand = (command, stream) =>
      telemetry.span("redis.command.start", { command: command.name, connection }, () => send(command, stream));
  }
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(
      `cannot connect to Redis (${redacted(url)}) for the ${options.role} connection: ${(error as Error).message}`,
    );
  }
  return redis;
}

/**
 * Fails a command that has no reply after `ms`, as ioredis's `commandTimeout` does, but never
 * because of a stall of our own: after an event loop blocked past `ms` (a GC pause, a starved
 * core), the timers run before the socket is read, so ioredis's timer would fail commands whose
 * replies are already waiting (and a socket quota would then admit on this node's word). The
 * verdict here waits one more turn of the loop (`setImmediate` runs after the poll phase has read
 * the socket), so a reply that arrived in time wins.
 */
function expireCommands(redis: Redis, ms: number): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (!command.isResolved) command.reject(new Error("Command timed out"));
        }),
      ms,
    );
    const settled = () => clearTimeout(timer);
    command.promise.then(settled, settled);
    return send(command, stream);
  };
}

/**
 * QUIT when connected (pending replies arrive first), waiting at most `timeoutMs`: a Redis that
 * hangs (stopped, partitioned) must not hold up a shutdown. Then the socket is dropped.
 */
export async function closeRedis(redis: Redis, timeoutMs = 1000): Promise<void> {
  if (redis.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    try {
      await Promise.race([redis.quit(), gaveUp]);
    } catch {
      // dropped below
    } finally {
      clearTimeout(timer);
    }
  }
  redis.disconnect();
}

/** The URL without its password, for error messages and logs. */
export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable REDIS_URL)";
  }
}
