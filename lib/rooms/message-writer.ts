/**
 * The message writer (private to the rooms context): group commit for new messages. Messages
 * submitted while a write is in flight (or within the same turn of the event loop) are inserted
 * together by ONE statement, which also checks that each author may still read the room, so a
 * message costs a share of one round trip instead of two round trips of its own.
 *
 * - order is kept: batches run one at a time, in submission order; inside a batch the rows are
 *   inserted in submission order (ids ascend with it), and their broadcasts go out in that order;
 * - every message is persisted before it is broadcast, and broadcast before its caller hears of it;
 * - a message the statement did not insert (the room is gone, or private and the author not a
 *   member) is handed back as `undefined`: the caller then takes the single-message path, which
 *   says why (NotFound) exactly as before;
 * - a failed statement fails every message of its batch (nothing of it was stored: one statement);
 * - while tracing (`traced()`), each message's `stored` runs in its own caller's async context
 *   (captured when it was submitted), so its broadcast is a span of its own request's trace; the
 *   batch's one statement runs in the context of the batch's first message (one statement, one
 *   trace). Without tracing nothing is captured.
 *
 *     const writer = createMessageWriter(db, (row) => publish(toMessage(row)), { traced: telemetry.tracing })
 *     const message = await writer.write({ roomId: 1, userId: 7, body: "hi" }) // → what `stored` made of the row, or undefined
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Knex } from "knex";
import type { Db } from "../db/index.ts";
import { statement } from "../db/prepared.ts";
import type { MessageRow } from "../db/rows.ts";

export type MessageWithAuthor = MessageRow & { author_name: string };

export interface NewMessage {
  roomId: number;
  userId: number;
  body: string;
}

interface Pending<T> extends NewMessage {
  resolve(stored: T | undefined): void;
  reject(error: unknown): void;
  /** Runs a function in the submitting caller's async context (captured only while tracing). */
  within: (<R>(fn: () => R) => R) | undefined;
}

export interface MessageWriterOptions {
  /** Whether a tracer is installed (telemetry.tracing): only then is each caller's context captured. */
  traced?: () => boolean;
}

export interface MessageWriter<T> {
  write(message: NewMessage): Promise<T | undefined>;
}

/**
 * At most this many rows per statement: bounds the statement's size (3 parameters a row, far
 * below PostgreSQL's 65,535) and how long one batch holds the connection.
 */
const MAX_BATCH = 500;

/** `stored` runs once per inserted row, in order, before any caller of the batch resumes. */
export function createMessageWriter<T>(
  db: Db,
  stored: (row: MessageWithAuthor) => T,
  options: MessageWriterOptions = {},
): MessageWriter<T> {
  const traced = options.traced ?? (() => false);
  const insert = createInsert(db);
  let queue: Array<Pending<T>> = [];
  let writing = false;
  let scheduled = false;

  function schedule(): void {
    if (writing || scheduled || queue.length === 0) return;
    scheduled = true;
    // The rest of this turn's messages (every socket's frames read in one poll) join the batch.
    setImmediate(flush);
  }

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH);
    queue = queue.length <= MAX_BATCH ? [] : queue.slice(MAX_BATCH);
    writing = true;
    try {
      const first = batch[0]!.within;
      const rows = await (first === undefined ? insert(batch) : first(() => insert(batch)));
      // Rows come back in id order, which is submission order; a message the statement left out
      // (no longer readable) is the one whose fields do not match the next row.
      let next = 0;
      const results: Array<T | undefined> = batch.map((m) => {
        const row = rows[next];
        if (row === undefined || row.room_id !== m.roomId || row.user_id !== m.userId || row.body !== m.body)
          return undefined;
        next++;
        return m.within === undefined ? stored(row) : m.within(() => stored(row));
      });
      batch.forEach((m, i) => m.resolve(results[i]));
    } catch (error) {
      for (const m of batch) m.reject(error);
    } finally {
      writing = false;
      schedule();
    }
  }

  return {
    write(message) {
      return new Promise((resolve, reject) => {
        const within = traced() ? AsyncLocalStorage.snapshot() : undefined;
        queue.push({ ...message, resolve, reject, within });
        schedule();
      });
    },
  };
}

/**
 * Batches of up to this many rows are sent as named statements, one per batch size (so at most
 * this many per connection); larger batches, which come only under heavy load and share their
 * statement among many messages, are sent unnamed.
 */
const NAMED_BATCH = 16;

/** One statement per batch: insert the readable messages in order, return them with their authors' names. */
function createInsert(db: Db): (batch: readonly NewMessage[]) => Promise<MessageWithAuthor[]> {
  const named = new Map<number, (...values: Knex.Value[]) => Promise<MessageWithAuthor[]>>();
  return async (batch) => {
    const bindings = batch.flatMap((m) => [m.roomId, m.userId, m.body]);
    if (batch.length > NAMED_BATCH) {
      const result = (await db.raw(insertSql(batch.length), bindings)) as { rows: MessageWithAuthor[] };
      return result.rows;
    }
    let send = named.get(batch.length);
    if (send === undefined) {
      const sql = insertSql(batch.length);
      send = statement(
        db,
        `rooms.insert_messages.${batch.length}`,
        (...values) => db.raw(sql, values),
        bindings.length,
      );
      named.set(batch.length, send);
    }
    return send(...bindings);
  };
}

/**
 * The rows of `count` messages, (room_id, user_id, body) each. Its columns are named, as a named
 * statement's must be (lib/db/prepared.ts).
 */
function insertSql(count: number): string {
  const values = Array.from({ length: count }, (_, i) => `(${i}::int, ?::int, ?::int, ?::text)`).join(", ");
  return `with inserted as (
       insert into messages (room_id, user_id, body)
       select v.room_id, v.user_id, v.body from (values ${values}) as v(ord, room_id, user_id, body)
       join rooms on rooms.id = v.room_id
       where not rooms.private
          or exists (select 1 from memberships where memberships.room_id = v.room_id and memberships.user_id = v.user_id)
       order by v.ord
       returning id, room_id, user_id, body, inserted_at, request_key)
     select inserted.id, inserted.room_id, inserted.user_id, inserted.body, inserted.inserted_at, inserted.request_key,
            users.name as author_name
       from inserted join users on users.id = inserted.user_id order by inserted.id`;
}
