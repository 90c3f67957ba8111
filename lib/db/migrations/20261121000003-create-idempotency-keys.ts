import type { Knex } from "knex";

/** Idempotency-Key results (lib/idempotency): one row per (scope, key), kept 24 h. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("idempotency_keys", (t) => {
    // `user:<id>` or `anonymous` (public POSTs); see lib/idempotency.
    t.text("scope").notNullable();
    t.text("key").notNullable();
    // SHA-256 of what the request asked for (method, path, version, body): a reuse with a different request is refused.
    t.text("fingerprint").notNullable();
    // Null while the first request is in flight.
    t.integer("status");
    t.jsonb("headers");
    // The exact bytes answered (text, not jsonb: jsonb would reorder keys).
    t.text("body");
    t.timestamp("locked_at", { useTz: true });
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.primary(["scope", "key"]);
    t.index(["expires_at"]);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable("idempotency_keys");
}
