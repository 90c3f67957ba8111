import type { Knex } from "knex";

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("rooms", (t) => {
    t.increments("id");
    t.text("name").notNullable();
    t.boolean("private").notNullable().defaultTo(false);
    t.integer("owner_id").notNullable().references("users.id").onDelete("CASCADE");
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });

  await db.schema.createTable("memberships", (t) => {
    t.integer("room_id").notNullable().references("rooms.id").onDelete("CASCADE");
    t.integer("user_id").notNullable().references("users.id").onDelete("CASCADE");
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(["room_id", "user_id"]);
    t.index(["user_id"]);
  });

  await db.schema.createTable("messages", (t) => {
    t.increments("id");
    t.integer("room_id").notNullable().references("rooms.id").onDelete("CASCADE");
    t.integer("user_id").notNullable().references("users.id").onDelete("CASCADE");
    t.text("body").notNullable();
    t.timestamp("inserted_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["room_id", "id"]);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable("messages");
  await db.schema.dropTable("memberships");
  await db.schema.dropTable("rooms");
}
