import type { Knex } from "knex";

/**
 * Sessions revoked within the last socket-token lifetime (lib/accounts/revocations.ts): loaded at
 * boot so socket tokens minted under them stay refused after a restart. No foreign key: the
 * session's row (and its user's) is gone by the time the row is read.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("revoked_sessions", (t) => {
    t.integer("session_id").primary();
    t.integer("user_id").notNullable();
    t.timestamp("revoked_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["revoked_at"]);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable("revoked_sessions");
}
