/**
 * When each user's pinned API version last changed (`PATCH /users/{id}` `{api_version}`), null if
 * never: loaded at boot for the changes of the last socket-token lifetime (lib/accounts/pin-changes.ts),
 * so a socket token minted before a change still connects in the pin as it stands after a restart.
 */
import type { Knex } from "knex";

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("users", (t) => {
    t.timestamp("api_version_changed_at", { useTz: true }).nullable();
    t.index(["api_version_changed_at"]);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable("users", (t) => {
    t.dropIndex(["api_version_changed_at"]);
    t.dropColumn("api_version_changed_at");
  });
}
