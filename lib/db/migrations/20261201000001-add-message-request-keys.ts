import type { Knex } from "knex";

/**
 * The `Idempotency-Key` a message was posted with (lib/rooms): unique per author, so a retry of a
 * POST whose first answer was lost after the insert finds the stored message instead of inserting
 * a second one, whatever happened to the idempotency record.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("messages", (t) => {
    t.text("request_key");
  });
  await db.raw(
    "create unique index messages_author_request_key_index on messages (user_id, request_key) where request_key is not null",
  );
}

export async function down(db: Knex): Promise<void> {
  await db.raw("drop index if exists messages_author_request_key_index");
  await db.schema.alterTable("messages", (t) => {
    t.dropColumn("request_key");
  });
}
