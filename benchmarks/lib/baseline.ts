/**
 * The baseline the HTTP benchmark measures Hypercast against: the least a Koa app on the same
 * knex instance must do to answer `GET /users/:id` for a bearer-token holder. The same two
 * queries as Hypercast's `users.show` (the token's SHA-256 joined to its user, then the user by
 * id) and nothing else: no version negotiation, schemas, hypermedia, problem documents or
 * request log. It uses @koa/router, as any real Koa app would, so the comparison prices our
 * layers rather than routing itself.
 *
 *     const app = buildBaselineApp(deps.db)
 *     createServer(app.callback()).listen(0, "127.0.0.1")
 */
import { createHash } from "node:crypto";
import Router from "@koa/router";
import Koa from "koa";
import type { Db } from "../../lib/db/index.ts";
import type { UserRow } from "../../lib/db/rows.ts";

export function buildBaselineApp(db: Db): Koa {
  const app = new Koa();
  const router = new Router();
  router.get("/users/:id", async function showUser(ctx) {
    const header = ctx.get("Authorization");
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    const viewer = await db<UserRow>("users")
      .join("access_tokens", "access_tokens.user_id", "users.id")
      .where("access_tokens.token_hash", createHash("sha256").update(token).digest("hex"))
      .first("users.*");
    if (viewer === undefined) {
      ctx.status = 401;
      return;
    }
    const row = await db<UserRow>("users").where({ id: Number(ctx.params["id"]) }).first();
    if (row === undefined) {
      ctx.status = 404;
      return;
    }
    ctx.body = { id: row.id, name: row.name, favorite_sports: row.favorite_sports };
  });
  app.use(router.routes());
  return app;
}
