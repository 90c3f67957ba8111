/**
 * Idempotency keys: the results of requests a client may retry, kept so a retry gets the first
 * result instead of doing the work twice (Stripe's semantics). The only door to the
 * `idempotency_keys` table. Knows nothing of HTTP: a request is a `(scope, key, fingerprint)`
 * and a result is an opaque `{status, headers, body}` to hand back.
 *
 *     const idempotency = createIdempotency(db)
 *     const claim = await idempotency.claim({ scope: "user:3", key: "9b1d…", fingerprint: "e3b0…" })
 *     if (claim.kind === "claimed") {
 *       // … do the work …
 *       await idempotency.complete(request, { status: 201, headers: { location: "/rooms/7" }, body: "{…}" })
 *     }
 *
 * A key lives `ttlSeconds` (24 h) from its first use; an expired key is ignored (a new request
 * may claim it afresh) and purged from time to time. A claim whose request never completed (the
 * process died) is abandoned after `lockTimeoutSeconds` and may be claimed again.
 *
 * When storing a result (`complete`) or giving a claim up (`release`) fails — the database went
 * away just after the work — the write is kept in memory and done first thing when that key is
 * claimed again on this node, so the client's retry gets the stored result (or runs afresh)
 * instead of "in flight" until the lock times out.
 */
import type { Db } from "../db/index.ts";

/** Who a key belongs to (`user:<id>`, or `anonymous`), the key itself, and a digest of the request. */
export interface IdempotentRequest {
  scope: string;
  key: string;
  fingerprint: string;
}

export interface StoredResult {
  status: number;
  headers: Record<string, string>;
  body: string | null;
}

/**
 * What a claim found: the key is now ours (`claimed`), it already has a result for the same
 * request (`replay`), its first request is still running (`in_flight`), or it was first used for
 * a different request (`mismatch`).
 */
export type Claim =
  { kind: "claimed" } | { kind: "replay"; result: StoredResult } | { kind: "in_flight" } | { kind: "mismatch" };

export interface IdempotencyOptions {
  /** How long a key and its result are kept (default 24 h). */
  ttlSeconds?: number;
  /** After how long an unfinished claim counts as abandoned (default 5 min). */
  lockTimeoutSeconds?: number;
  /** How often expired rows are purged, at most (default 10 min). */
  purgeIntervalMs?: number;
}

interface IdempotencyKeyRow {
  scope: string;
  key: string;
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
  locked_at: Date | null;
  inserted_at: Date;
  expires_at: Date;
}

export type Idempotency = ReturnType<typeof createIdempotency>;

const TABLE = "idempotency_keys";
/** Failed writes kept for retry at most (the oldest give way: their claims lapse by timeout). */
const MAX_UNSETTLED = 10_000;

export function createIdempotency(db: Db, options: IdempotencyOptions = {}) {
  const ttlSeconds = options.ttlSeconds ?? 86_400;
  const lockTimeoutSeconds = options.lockTimeoutSeconds ?? 300;
  const purgeIntervalMs = options.purgeIntervalMs ?? 600_000;
  let lastPurge = 0;
  /** Writes that failed, by `scope \0 key`, retried before that key's next claim. */
  const unsettled = new Map<string, () => Promise<void>>();

  /** Runs `write`; if it fails, keeps it for the key's next claim and rethrows. */
  async function settleLater(request: IdempotentRequest, write: () => Promise<void>): Promise<void> {
    const id = `${request.scope}\0${request.key}`;
    try {
      await write();
      unsettled.delete(id);
    } catch (error) {
      if (unsettled.size >= MAX_UNSETTLED) unsettled.delete(unsettled.keys().next().value!);
      unsettled.set(id, write);
      throw error;
    }
  }

  async function settle(request: IdempotentRequest): Promise<void> {
    const id = `${request.scope}\0${request.key}`;
    const write = unsettled.get(id);
    if (write === undefined) return;
    await write();
    unsettled.delete(id);
  }

  async function purgeExpired(): Promise<number> {
    lastPurge = Date.now();
    // `returning` rather than the driver's row count, which PGlite's knex client does not report as a number.
    const purged = await db(TABLE).where("expires_at", "<=", db.fn.now()).delete().returning("key");
    return purged.length;
  }

  /** Inserts the claim, or takes over an expired or abandoned row; true when the key is now ours. */
  async function tryClaim(request: IdempotentRequest): Promise<boolean> {
    const expiresAt = db.raw("now() + make_interval(secs => ?)", [ttlSeconds]);
    const claimed = await db<IdempotencyKeyRow>(TABLE)
      .insert({ ...request, locked_at: db.fn.now(), expires_at: expiresAt } as never)
      .onConflict(["scope", "key"])
      .merge({
        fingerprint: request.fingerprint,
        status: null,
        headers: null,
        body: null,
        locked_at: db.fn.now(),
        inserted_at: db.fn.now(),
        expires_at: expiresAt,
      } as never)
      // One statement, so two concurrent first uses cannot both win.
      .where(
        db.raw(
          `${TABLE}.expires_at <= now() or (${TABLE}.status is null and ${TABLE}.locked_at <= now() - make_interval(secs => ?))`,
          [lockTimeoutSeconds],
        ),
      )
      .returning("key");
    return claimed.length > 0;
  }

  return {
    purgeExpired,

    /** Claims `key` in `scope` for this request, or says why not. */
    async claim(request: IdempotentRequest): Promise<Claim> {
      await settle(request);
      if (Date.now() - lastPurge >= purgeIntervalMs) await purgeExpired();
      // A row can vanish between the insert and the read (its request failed and was released): try again.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await tryClaim(request)) return { kind: "claimed" };
        const row = await db<IdempotencyKeyRow>(TABLE).where({ scope: request.scope, key: request.key }).first();
        if (row === undefined) continue;
        if (row.fingerprint !== request.fingerprint) return { kind: "mismatch" };
        if (row.status === null) return { kind: "in_flight" };
        return { kind: "replay", result: { status: row.status, headers: row.headers ?? {}, body: row.body } };
      }
      return { kind: "in_flight" };
    },

    /** Stores the result of a claimed request, for replays until the key expires. */
    async complete(request: IdempotentRequest, result: StoredResult): Promise<void> {
      await settleLater(request, async () => {
        await db(TABLE)
          .where({ scope: request.scope, key: request.key, fingerprint: request.fingerprint })
          .whereNull("status")
          .update({
            status: result.status,
            headers: JSON.stringify(result.headers),
            body: result.body,
            locked_at: null,
          });
      });
    },

    /** Gives a claimed key up without a result (the request failed on our side): a retry runs afresh. */
    async release(request: IdempotentRequest): Promise<void> {
      await settleLater(request, async () => {
        await db(TABLE)
          .where({ scope: request.scope, key: request.key, fingerprint: request.fingerprint })
          .whereNull("status")
          .delete();
      });
    },
  };
}
