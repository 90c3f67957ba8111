import type { Knex } from "knex";

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("users", (t) => {
    t.increments("id");
    t.text("name").notNullable();
    t.text("email").notNullable();
    t.text("password_hash").notNullable();
    t.specificType("favorite_sports", "text[]").notNullable().defaultTo("{}");
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  // E-mail addresses are unique regardless of case.
  await db.schema.raw("create unique index users_email_lower_index on users (lower(email))");

  await db.schema.createTable("access_tokens", (t) => {
    t.increments("id");
    t.integer("user_id").notNullable().references("users.id").onDelete("CASCADE");
    t.text("token_hash").notNullable().unique();
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["user_id"]);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable("access_tokens");
  await db.schema.dropTable("users");
}
