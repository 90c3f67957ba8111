/**
 * Configuration for the knex CLI, for operators who prefer it to `npm run db:migrate`:
 *
 *     DATABASE_URL=postgres://… npx knex --knexfile knexfile.ts migrate:list
 *
 * Migrations come from lib/db/migrations (the same ordered list the server applies).
 */
import type { Knex } from "knex";
import { migrationSource } from "./lib/db/migrations/index.ts";

const config: Knex.Config = {
  client: "pg",
  connection: process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/hypercast",
  migrations: { migrationSource },
};

export default config;
