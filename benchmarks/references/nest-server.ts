/**
 * The HTTP benchmark's peer (forked by `http.ts`, never run by hand): the same request served
 * the way a team choosing NestJS would write it, on its Fastify adapter. Nest's own media-type
 * versioning (`Accept: application/json;v=2`; on Fastify a versioned route
 * matches only a request that names its version), a guard that admits a bearer-token
 * holder, a service that owns the two queries (knex, its own pool of 10, the same statements as
 * Hypercast's, unprepared unless `prepared`), and a controller that writes the same v2 body and headers as Hypercast
 * (versioned Content-Type, strong ETag, `Vary: Accept, Authorization`, request id, security headers). It
 * imports nothing of Hypercast.
 *
 * Nest's decorators are TypeScript's legacy ones: this directory's tsconfig.json turns them on
 * (tsx is pointed at it). esbuild emits no decorator metadata, so injections name their tokens.
 *
 * Argument: JSON `{ databaseUrl, schema, prepared? }`. Ready message: `{ url }`.
 */
import "reflect-metadata";
import { createHash, randomUUID } from "node:crypto";
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  NotFoundException,
  Param,
  ParseIntPipe,
  Req,
  Res,
  UnauthorizedException,
  UseGuards,
  VersioningType,
  type CanActivate,
  type ExecutionContext,
} from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import type { FastifyReply, FastifyRequest } from "fastify";
import knex, { type Knex } from "knex";
import { serveUntilStopped } from "../lib/processes.ts";
import { settle } from "../lib/settle.ts";

interface UserRow {
  id: number;
  name: string;
  email: string;
  favorite_sports: string[];
  api_version: number;
}

type AuthedRequest = FastifyRequest & { viewer?: UserRow };

const DB = Symbol("db");
const PREPARED = Symbol("prepared");
/** The columns Hypercast reads for a user. */
const USER_COLUMNS = ["id", "name", "email", "favorite_sports", "api_version", "inserted_at", "updated_at"];
const TYPE = "application/vnd.app.v2+json";
const HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  vary: "Accept, Authorization",
};

@Injectable()
class UsersService {
  constructor(
    @Inject(DB) private readonly db: Knex,
    @Inject(PREPARED) private readonly prepared: boolean,
  ) {}

  findByToken(token: string): Promise<UserRow | undefined> {
    return this.db<UserRow>("users")
      .join("access_tokens", "access_tokens.user_id", "users.id")
      .where("access_tokens.token_hash", createHash("sha256").update(token).digest("hex"))
      .first<UserRow | undefined>(...USER_COLUMNS.map((column) => `users.${column}`), "access_tokens.id as session_id")
      .options(this.named("session"));
  }

  findById(id: number): Promise<UserRow | undefined> {
    return this.db<UserRow>("users").where({ id }).first<UserRow | undefined>(USER_COLUMNS).options(this.named("user"));
  }

  /** pg's named statements: parsed and planned once per connection (`--prepared-references`). */
  private named(name: string): { name?: string } {
    return this.prepared ? { name } : {};
  }
}

@Injectable()
class BearerGuard implements CanActivate {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const token = /^Bearer[ ]+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
    const viewer = token === undefined ? undefined : await this.users.findByToken(token);
    if (viewer === undefined) throw new UnauthorizedException();
    request.viewer = viewer;
    return true;
  }
}

@Controller({ path: "users", version: "2" })
class UsersController {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  @Get(":id")
  @UseGuards(BearerGuard)
  async show(
    @Param("id", ParseIntPipe) id: number,
    @Req() request: AuthedRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string> {
    const user = await this.users.findById(id);
    if (user === undefined) throw new NotFoundException();
    const link = (href: string) => ({ href, type: TYPE });
    const body = JSON.stringify({
      id: user.id,
      name: user.name,
      ...(request.viewer?.id === user.id ? { email: user.email } : {}),
      favorite_sports: user.favorite_sports,
      ...(request.viewer?.id === user.id ? { api_version: user.api_version } : {}),
      _links: { self: link(`/users/${user.id}`), collection: link("/users") },
    });
    const type = `${TYPE}; charset=utf-8`;
    reply.headers(HEADERS);
    reply.header("x-request-id", randomUUID());
    reply.header("etag", `"${createHash("sha256").update(`${type}\n${body}`).digest("base64url")}"`);
    reply.type(type);
    return body;
  }
}

serveUntilStopped(async () => {
  const { databaseUrl, schema, prepared } = JSON.parse(process.argv[2] ?? "{}") as {
    databaseUrl: string;
    schema: string;
    prepared?: boolean;
  };
  const db = knex({ client: "pg", connection: databaseUrl, searchPath: [schema], pool: { min: 0, max: 10 } });

  @Module({
    controllers: [UsersController],
    providers: [
      UsersService,
      BearerGuard,
      { provide: DB, useValue: db },
      { provide: PREPARED, useValue: prepared === true },
    ],
  })
  class AppModule {}

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule,
    new FastifyAdapter({ keepAliveTimeout: 65_000 }),
    {
      logger: ["error", "warn"],
    },
  );
  app.enableVersioning({ type: VersioningType.MEDIA_TYPE, key: "v=", defaultVersion: "2" });
  await app.listen(0, "127.0.0.1");
  const server = app.getHttpServer();
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("Nest is not listening on a TCP port");
  return {
    info: { url: `http://127.0.0.1:${address.port}` },
    async stop() {
      server.closeAllConnections();
      await app.close();
      await settle(db);
      await db.destroy();
    },
  };
});
