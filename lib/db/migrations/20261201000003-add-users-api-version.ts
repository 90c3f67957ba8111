/**
 * Every user has a pinned API version (what their requests naming no version are served in).
 * Accounts created before pins existed were served the default, 2, so that is their pin; new
 * accounts must name theirs (the version their sign-up was served in), hence no default after.
 */
import type { Knex } from "knex";

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("users", (t) => {
    t.smallint("api_version").notNullable().defaultTo(2);
  });
  await db.schema.raw("alter table users alter column api_version drop default");
  await db.schema.raw("alter table users add constraint users_api_version_positive check (api_version > 0)");
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable("users", (t) => {
    t.dropColumn("api_version");
  });
}
