/**
 * A deadline for statements on PostgreSQL that costs nothing per query. A connection that is
 * busy with a statement and has received nothing for `limitMs` is closed, so the statement fails
 * with "Connection terminated unexpectedly" (a 503 upstream, lib/db/errors.ts) instead of holding
 * its request and its pool slot while a peer that vanished never answers. knex's pool then
 * discards the connection and opens a fresh one for the next caller.
 *
 * One timer checks every watched connection every `checkEveryMs`: whether it is busy (pg's
 * `readyForQuery`) and how many bytes its socket has read. Nothing is armed per statement, so
 * the deadline is kept to within one check interval.
 *
 * Why not pg's `query_timeout`: it arms a timer per statement, and with knex and pg alone (100
 * callers, a pool of 10, two statements each: benchmarks/http/statement-timer.ts) that set off V8's
 * allocation-site pretenuring, so every statement's objects went to the old generation: scavenges
 * paused 7.4 ms instead of 1.8 and the old generation needed five mark-compacts in 6 s instead of
 * none. benchmarks/NOTES.md (bench:http, "A timer per statement") has the figures.
 *
 *     const deadline = statementDeadline(30_000, (ms) => log.warn(`no answer for ${ms} ms`))
 *     knex({ client: "pg", pool: { afterCreate: deadline.adopt }, … })
 */

/** The parts of a pg `Client` the deadline reads (`readyForQuery` is a field pg keeps but does not type). */
export interface WatchedConnection {
  /** pg sets it false while a statement is out and true on the server's ReadyForQuery. */
  readonly readyForQuery?: boolean;
  readonly connection: { readonly stream: { readonly bytesRead: number; destroy(): void } };
  once(event: "end", listener: () => void): unknown;
}

export interface StatementDeadline {
  /** For knex's pool `afterCreate`: watches the new connection until it ends. */
  readonly adopt: (connection: WatchedConnection, done: (error: Error | null, connection: unknown) => void) => void;
}

interface Watch {
  bytesRead: number;
  /** When this connection was last seen idle or reading. */
  quietSince: number;
}

export function statementDeadline(
  limitMs: number,
  onExpired: (quietMs: number) => void = () => {},
  checkEveryMs = Math.min(1000, Math.max(25, Math.floor(limitMs / 4))),
): StatementDeadline {
  const watches = new Map<WatchedConnection, Watch>();
  let timer: NodeJS.Timeout | undefined;

  function check(): void {
    const now = performance.now();
    for (const [connection, watch] of watches) {
      const bytesRead = connection.connection.stream.bytesRead;
      if (connection.readyForQuery === true || bytesRead !== watch.bytesRead) {
        watch.bytesRead = bytesRead;
        watch.quietSince = now;
      } else if (now - watch.quietSince >= limitMs) {
        forget(connection);
        onExpired(Math.round(now - watch.quietSince));
        connection.connection.stream.destroy();
      }
    }
  }

  function forget(connection: WatchedConnection): void {
    watches.delete(connection);
    if (watches.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  return {
    adopt(connection, done) {
      watches.set(connection, { bytesRead: connection.connection.stream.bytesRead, quietSince: performance.now() });
      connection.once("end", () => forget(connection));
      // Runs only while there are connections; never keeps the process alive.
      timer ??= setInterval(check, checkEveryMs).unref();
      done(null, connection);
    },
  };
}
