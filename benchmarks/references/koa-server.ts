/**
 * The HTTP benchmark's reference (forked by `http.ts`, never run by hand): the least a bare
 * Koa + @koa/router + knex + pg server must do to answer `GET /users/:id` for a bearer-token
 * holder the way Hypercast's v2 does. It imports nothing of Hypercast: its own process, its own
 * knex pool of 10 on the schema Hypercast seeded, the same two statements Hypercast sends (the
 * token's SHA-256 joined to its user; the user by id, both built with knex exactly as
 * lib/accounts does, naming the same columns; sent unprepared, knex's default, unless `prepared`
 * names them as Hypercast does), and the same v2 body and headers (versioned Content-Type,
 * strong ETag over type and body, `Vary: Accept, Authorization`, a request id and the security
 * headers). Nothing else: no negotiation, rate limiting, request log or metrics.
 *
 * Argument: JSON `{ databaseUrl, schema, prepared? }`. Ready message: `{ url }`.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Router from "@koa/router";
import knex from "knex";
import Koa from "koa";
import { serveUntilStopped } from "../lib/processes.ts";
import { settle } from "../lib/settle.ts";

interface UserRow {
  id: number;
  name: string;
  email: string;
  favorite_sports: string[];
  api_version: number;
}

/** The columns lib/accounts reads for a user. */
const USER_COLUMNS = ["id", "name", "email", "favorite_sports", "api_version", "inserted_at", "updated_at"];

const TYPE = "application/vnd.app.v2+json";
const HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
  Vary: "Accept, Authorization",
};

serveUntilStopped(async () => {
  const { databaseUrl, schema, prepared } = JSON.parse(process.argv[2] ?? "{}") as {
    databaseUrl: string;
    schema: string;
    prepared?: boolean;
  };
  const db = knex({ client: "pg", connection: databaseUrl, searchPath: [schema], pool: { min: 0, max: 10 } });
  // pg's named statements: parsed and planned once per connection (`--prepared-references`).
  const named = (name: string) => (prepared === true ? { name } : {});
  const link = (href: string) => ({ href, type: TYPE });

  const router = new Router();
  router.get("/users/:id", async function showUser(ctx) {
    ctx.set(HEADERS);
    ctx.set("X-Request-Id", randomUUID());
    const token = /^Bearer[ ]+(\S+)$/i.exec(ctx.get("Authorization"))?.[1];
    const viewer =
      token === undefined
        ? undefined
        : await db<UserRow>("users")
            .join("access_tokens", "access_tokens.user_id", "users.id")
            .where("access_tokens.token_hash", createHash("sha256").update(token).digest("hex"))
            .first<UserRow | undefined>(
              ...USER_COLUMNS.map((column) => `users.${column}`),
              "access_tokens.id as session_id",
            )
            .options(named("session"));
    if (viewer === undefined) {
      ctx.status = 401;
      return;
    }
    const user = await db<UserRow>("users")
      .where({ id: Number(ctx.params["id"]) })
      .first<UserRow | undefined>(USER_COLUMNS)
      .options(named("user"));
    if (user === undefined) {
      ctx.status = 404;
      return;
    }
    const body = JSON.stringify({
      id: user.id,
      name: user.name,
      ...(viewer.id === user.id ? { email: user.email } : {}),
      favorite_sports: user.favorite_sports,
      ...(viewer.id === user.id ? { api_version: user.api_version } : {}),
      _links: { self: link(`/users/${user.id}`), collection: link("/users") },
    });
    const type = `${TYPE}; charset=utf-8`;
    ctx.type = type;
    ctx.set("ETag", `"${createHash("sha256").update(`${type}\n${body}`).digest("base64url")}"`);
    ctx.body = body;
  });
  const app = new Koa();
  app.use(router.routes());

  const server = createServer(app.callback());
  server.keepAliveTimeout = 65_000; // as Hypercast's
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    info: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await settle(db);
      await db.destroy();
    },
  };
});
