/**
 * The ordered list of migrations. Append-only: a migration that has shipped is never edited;
 * a change is a new file added at the end of this list.
 */
import type { Knex } from "knex";
import * as createAccounts from "./20261121000001-create-accounts.ts";
import * as createRooms from "./20261121000002-create-rooms.ts";
import * as createIdempotencyKeys from "./20261121000003-create-idempotency-keys.ts";
import * as addMessageRequestKeys from "./20261201000001-add-message-request-keys.ts";
import * as createRevokedSessions from "./20261201000002-create-revoked-sessions.ts";
import * as addUsersApiVersion from "./20261201000003-add-users-api-version.ts";
import * as addUsersApiVersionChangedAt from "./20261201000004-add-users-api-version-changed-at.ts";

interface Migration {
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

const MIGRATIONS: ReadonlyArray<readonly [string, Migration]> = [
  ["20261121000001-create-accounts", createAccounts],
  ["20261121000002-create-rooms", createRooms],
  ["20261121000003-create-idempotency-keys", createIdempotencyKeys],
  ["20261201000001-add-message-request-keys", addMessageRequestKeys],
  ["20261201000002-create-revoked-sessions", createRevokedSessions],
  ["20261201000003-add-users-api-version", addUsersApiVersion],
  ["20261201000004-add-users-api-version-changed-at", addUsersApiVersionChangedAt],
];

export const migrationSource: Knex.MigrationSource<readonly [string, Migration]> = {
  getMigrations: async () => [...MIGRATIONS],
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
