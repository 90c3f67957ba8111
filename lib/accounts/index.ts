/**
 * Accounts: users, their passwords, bearer tokens and socket tokens. The only door to the
 * `users` and `access_tokens` tables.
 *
 *     const accounts = createAccounts(db, { secretKeyBase, socketTokenTtlSeconds: 86400, passwordHashCost: 15 })
 *     const user = await accounts.registerUser({ name: "Ada", email: "ada@example.com", password: "s3cret-pass" })
 *     const { token } = await accounts.createSession("ada@example.com", "s3cret-pass")
 *     await accounts.findUserByToken(token) // → user
 */
import { hash, randomBytes } from "node:crypto";
import type { Db } from "../db/index.ts";
import { isUniqueViolation } from "../db/errors.ts";
import { keysetPage, type PageRequest, type PageResult } from "../db/keyset.ts";
import type { UserRow } from "../db/rows.ts";
import { Conflict, Forbidden, NotFound, Unauthorized } from "../errors.ts";
import { createPasswordHasher, hashPassword } from "./passwords.ts";
import { createSocketTokenSigner, type SocketTokenResult } from "./socket-tokens.ts";

export type { SocketTokenResult } from "./socket-tokens.ts";
export type { PasswordHasher } from "./passwords.ts";

export interface User {
  id: number;
  name: string;
  email: string;
  favoriteSports: string[];
  insertedAt: Date;
  updatedAt: Date;
}

export interface Registration {
  name: string;
  email: string;
  password: string;
  favoriteSports?: string[] | undefined;
}

/**
 * A change to a user. `favoriteSports` replaces the whole list; `firstFavoriteSport` replaces
 * only its first element and keeps the rest (`null` removes the first element) — how a client
 * that knows a single favourite sport edits without erasing the others.
 */
export interface UserChanges {
  name?: string | undefined;
  favoriteSports?: string[] | undefined;
  firstFavoriteSport?: string | null | undefined;
}

export interface Session {
  user: User;
  token: string;
  socketToken: string;
}

export interface AccountsOptions {
  secretKeyBase: string;
  socketTokenTtlSeconds: number;
  /** log2 of scrypt's N. */
  passwordHashCost: number;
  /** Bounds of the password hashing queue (see createPasswordHasher); defaults 2, 16 and 2. */
  passwordHashConcurrency?: number;
  passwordHashQueue?: number;
  passwordHashPerAddress?: number;
}

export type Accounts = ReturnType<typeof createAccounts>;

export function createAccounts(db: Db, options: AccountsOptions) {
  const socketTokens = createSocketTokenSigner(options.secretKeyBase, options.socketTokenTtlSeconds);
  // Every hash and check goes through this queue; `lane` (the client address) keeps one caller's flood to itself.
  const passwords = createPasswordHasher({
    cost: options.passwordHashCost,
    concurrency: options.passwordHashConcurrency ?? 2,
    queue: options.passwordHashQueue ?? 16,
    perLane: options.passwordHashPerAddress ?? 2,
  });
  // Compared against when the e-mail is unknown, so both failures cost the same time.
  const decoyHash = hashPassword("decoy password", options.passwordHashCost);

  async function findUser(id: number): Promise<User | undefined> {
    const row = await db<UserRow>("users").where({ id }).first();
    return row && toUser(row);
  }

  async function getUser(id: number): Promise<User> {
    const user = await findUser(id);
    if (user === undefined) throw new NotFound("user", id);
    return user;
  }

  /** `lane`: whose turn in the password queue this is (the client address over HTTP). */
  async function authenticate(email: string, password: string, lane?: string): Promise<User> {
    const row = await db<UserRow>("users").whereRaw("lower(email) = lower(?)", [email]).first();
    const ok = await passwords.verify(password, row?.password_hash ?? (await decoyHash), lane);
    if (row === undefined || !ok) throw new Unauthorized("unknown e-mail address or wrong password");
    return toUser(row);
  }

  function assertSelf(actorId: number, userId: number, action: string): void {
    if (actorId !== userId) throw new Forbidden(`only the user themself may ${action} user ${userId}`);
  }

  return {
    findUser,
    getUser,
    authenticate,
    /** The password queue, for anything else that hashes or checks a password (a password change). */
    passwords,

    async registerUser(attrs: Registration, lane?: string): Promise<User> {
      const passwordHash = await passwords.hash(attrs.password, lane);
      try {
        const [row] = await db<UserRow>("users")
          .insert({ name: attrs.name, email: attrs.email, password_hash: passwordHash, favorite_sports: attrs.favoriteSports ?? [] })
          .returning("*");
        return toUser(row!);
      } catch (error) {
        if (isUniqueViolation(error, "users_email_lower_index")) {
          throw new Conflict("that e-mail address is already registered", [{ pointer: "/email", detail: "is already taken" }]);
        }
        throw error;
      }
    },

    /** Users by ascending id. */
    async listUsers(page: PageRequest): Promise<PageResult<User>> {
      const { rows, more } = await keysetPage<UserRow>(db("users"), "id", "asc", page);
      return { rows: rows.map(toUser), more };
    },

    async updateUser(actorId: number, userId: number, changes: UserChanges): Promise<User> {
      await getUser(userId);
      assertSelf(actorId, userId, "change");
      const update: Record<string, unknown> = { updated_at: db.fn.now() };
      if (changes.name !== undefined) update["name"] = changes.name;
      if (changes.favoriteSports !== undefined) update["favorite_sports"] = changes.favoriteSports;
      if (changes.firstFavoriteSport !== undefined) {
        // One statement, so a concurrent change to the rest of the list is never lost.
        update["favorite_sports"] =
          changes.firstFavoriteSport === null
            ? db.raw("favorite_sports[2:]")
            : db.raw("array_prepend(?::text, favorite_sports[2:])", [changes.firstFavoriteSport]);
      }
      const [row] = await db<UserRow>("users").where({ id: userId }).update(update).returning("*");
      if (row === undefined) throw new NotFound("user", userId);
      return toUser(row);
    },

    /** Deletes the user; their tokens and memberships go with them. */
    async deleteUser(actorId: number, userId: number): Promise<void> {
      await getUser(userId);
      assertSelf(actorId, userId, "delete");
      await db("users").where({ id: userId }).delete();
    },

    /** Checks the credentials and issues a bearer token and a socket token. */
    async createSession(email: string, password: string, lane?: string): Promise<Session> {
      const user = await authenticate(email, password, lane);
      const token = randomBytes(32).toString("base64url");
      await db("access_tokens").insert({ user_id: user.id, token_hash: digest(token) });
      return { user, token, socketToken: await socketTokens.sign(user.id) };
    },

    async findUserByToken(token: string): Promise<User | undefined> {
      const row = await db<UserRow>("users")
        .join("access_tokens", "access_tokens.user_id", "users.id")
        .where("access_tokens.token_hash", digest(token))
        .first("users.*");
      return row && toUser(row);
    },

    /** Revokes a bearer token at once. */
    async revokeToken(token: string): Promise<void> {
      await db("access_tokens").where({ token_hash: digest(token) }).delete();
    },

    issueSocketToken(userId: number): Promise<string> {
      return socketTokens.sign(userId);
    },

    /** Verifies a socket token without touching the database. */
    verifySocketToken(token: string): Promise<SocketTokenResult> {
      return socketTokens.verify(token);
    },

    /** The same, synchronously: for deciding a WebSocket upgrade inside its callback. */
    verifySocketTokenNow(token: string): SocketTokenResult {
      return socketTokens.verifyNow(token);
    },
  };
}

function digest(token: string): string {
  return hash("sha256", token, "hex");
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    favoriteSports: row.favorite_sports,
    insertedAt: row.inserted_at,
    updatedAt: row.updated_at,
  };
}
