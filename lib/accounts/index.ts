/**
 * Accounts: users, their passwords, sessions (bearer tokens) and socket tokens. The only door to
 * the `users`, `access_tokens` and `revoked_sessions` tables.
 *
 *     const accounts = createAccounts(db, { secretKeyBase, socketTokenTtlSeconds: 86400, passwordHashCost: 15 }, pubsub)
 *     await accounts.loadRevocations()   // at boot, before the realtime tier accepts sockets
 *     await accounts.loadPinChanges()    // likewise
 *     const user = await accounts.registerUser({ name: "Ada", email: "ada@example.com", password: "s3cret-pass" })
 *     const { token } = await accounts.createSession("ada@example.com", "s3cret-pass")
 *     await accounts.findUserByToken(token) // → user
 *     accounts.onSessionsRevoked((ids) => closeSocketsOf(ids))
 *
 * A session is one bearer token's row; its id is the `sid` every socket token minted under it
 * carries. Revoking sessions (log-out, user deletion, password change) deletes their rows, records
 * their ids in `revoked_sessions` and publishes them on `REVOCATIONS_TOPIC`: every node (this one
 * synchronously, the others through the cluster PubSub) adds them to its in-memory revoked set,
 * which `verifySocketToken` consults without a database read, and tells its listeners, so the
 * realtime tier can close the sockets opened with those tokens.
 *
 * A socket token also carries its user's pin as it stood when the token was minted; changing the
 * pin (`updateUser` with `apiVersion`) stamps `users.api_version_changed_at` and publishes the new
 * pin on `PINS_TOPIC`, which every node keeps in memory for one socket-token lifetime
 * (pin-changes.ts), so `verifySocketTokenNow` answers with the pin as it stands at the upgrade.
 */
import { hash, randomBytes } from "node:crypto";
import type { Db } from "../db/index.ts";
import { isUniqueViolation } from "../db/errors.ts";
import { keysetPage, type PageRequest, type PageResult } from "../db/keyset.ts";
import { statement } from "../db/prepared.ts";
import type { RevokedSessionRow, UserRow } from "../db/rows.ts";
import { Conflict, Forbidden, Invalid, NotFound, Unauthorized } from "../errors.ts";
import type { PubSub } from "../pubsub/index.ts";
import { CURRENT_VERSION, isApiVersion, type ApiVersion } from "../versions.ts";
import { createPasswordHasher, decoyHash } from "./passwords.ts";
import { createPinChanges } from "./pin-changes.ts";
import { createRevocationSet } from "./revocations.ts";
import { createSocketTokenSigner, type SocketTokenResult } from "./socket-tokens.ts";

export type { SocketTokenResult } from "./socket-tokens.ts";
export type { PasswordHasher } from "./passwords.ts";

export interface User {
  id: number;
  name: string;
  email: string;
  favoriteSports: string[];
  /** The pinned API version: what this user's requests naming no version are served in. */
  apiVersion: ApiVersion;
  insertedAt: Date;
  updatedAt: Date;
}

export interface Registration {
  name: string;
  email: string;
  password: string;
  favoriteSports?: string[] | undefined;
  /** The pin: the version the sign-up was served in (default: the current version). */
  apiVersion?: ApiVersion | undefined;
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
  /** A new pinned version (the caller checks that it is still offered). */
  apiVersion?: ApiVersion | undefined;
}

export interface Session {
  user: User;
  /** The session's id: the `sid` of its socket tokens. */
  sessionId: number;
  token: string;
  socketToken: string;
}

/** Who holds a bearer token: the user and the session (token row) it belongs to. */
export interface TokenHolder {
  user: User;
  sessionId: number;
}

/** The PubSub topic on which revoked session ids travel between nodes (event `sessions.revoked`, lib/pubsub/events.ts). */
export const REVOCATIONS_TOPIC = "accounts:revocations";

/** The payload of `sessions.revoked`. */
export interface SessionsRevoked {
  sessionIds: number[];
  revokedAt: Date;
}

/** The PubSub topic on which pin changes travel between nodes (event `user.pin.changed`, lib/pubsub/events.ts). */
export const PINS_TOPIC = "accounts:pins";

/** The payload of `user.pin.changed`: `apiVersion` is any positive version (a newer node may know more). */
export interface PinChanged {
  userId: number;
  apiVersion: number;
  changedAt: Date;
}

type Trx = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

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

export function createAccounts(db: Db, options: AccountsOptions, pubsub: PubSub) {
  const socketTokens = createSocketTokenSigner(options.secretKeyBase, options.socketTokenTtlSeconds);
  const ttlMs = options.socketTokenTtlSeconds * 1000;
  const revoked = createRevocationSet(ttlMs);
  const listeners = new Set<(sessionIds: readonly number[]) => void>();
  // Every node's revocations, this one's included (local delivery is synchronous).
  pubsub.subscribe(REVOCATIONS_TOPIC, (message) => {
    if (message.event !== "sessions.revoked") return;
    revoked.add(message.payload.sessionIds, message.payload.revokedAt.getTime());
    for (const listener of listeners) listener(message.payload.sessionIds);
  });
  const pins = createPinChanges(ttlMs);
  // Every node's pin changes, this one's included (local delivery is synchronous).
  pubsub.subscribe(PINS_TOPIC, (message) => {
    if (message.event !== "user.pin.changed") return;
    const { userId, apiVersion, changedAt } = message.payload;
    if (isApiVersion(apiVersion)) pins.set(userId, apiVersion, changedAt.getTime());
  });
  // Every hash and check goes through this queue; `lane` (the client address) keeps one caller's flood to itself.
  const passwords = createPasswordHasher({
    cost: options.passwordHashCost,
    concurrency: options.passwordHashConcurrency ?? 2,
    queue: options.passwordHashQueue ?? 16,
    perLane: options.passwordHashPerAddress ?? 2,
  });
  // Compared against when the e-mail is unknown, so both failures cost the same time.
  const decoy = decoyHash(options.passwordHashCost);

  // On every request (the caller's token, the resource): statements compiled once and prepared,
  // naming their columns (../db/prepared.ts), and `.then` rather than `await` in an async
  // function, which would add a frame and a microtask per query.
  const userById = statement<[number], UserFields>(db, "accounts.user", (id) =>
    db("users").where({ id }).first(USER_FIELDS),
  );
  const sessionByTokenHash = statement<[string], UserFields & { session_id: number }>(
    db,
    "accounts.session",
    (tokenHash) =>
      db("users")
        .join("access_tokens", "access_tokens.user_id", "users.id")
        .where("access_tokens.token_hash", tokenHash)
        .first(...USERS_FIELDS, "access_tokens.id as session_id"),
  );

  function findUser(id: number): Promise<User | undefined> {
    return userById(id).then(([row]) => row && toUser(row));
  }

  function getUser(id: number): Promise<User> {
    return findUser(id).then((user) => {
      if (user === undefined) throw new NotFound("user", id);
      return user;
    });
  }

  /** `lane`: whose turn in the password queue this is (the client address over HTTP). */
  async function authenticate(email: string, password: string, lane?: string): Promise<User> {
    const row = await db<UserRow>("users").whereRaw("lower(email) = lower(?)", [email]).first();
    const ok = await passwords.verify(password, row?.password_hash ?? decoy, lane);
    if (row === undefined || !ok) throw new Unauthorized("unknown e-mail address or wrong password");
    return toUser(row);
  }

  function assertSelf(actorId: number, userId: number, action: string): void {
    if (actorId !== userId) throw new Forbidden(`only the user themself may ${action} user ${userId}`);
  }

  /** Records deleted sessions as revoked (in the caller's transaction). */
  async function recordRevoked(trx: Trx, userId: number, sessionIds: readonly number[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await trx("revoked_sessions")
      .insert(sessionIds.map((id) => ({ session_id: id, user_id: userId })))
      .onConflict("session_id")
      .ignore();
  }

  /** After the commit: every node learns of the revocation. */
  function announceRevoked(sessionIds: readonly number[]): void {
    if (sessionIds.length === 0) return;
    pubsub.broadcast(REVOCATIONS_TOPIC, "sessions.revoked", { sessionIds: [...sessionIds], revokedAt: new Date() });
  }

  /**
   * Verifies a socket token without a database read. Its `pinnedVersion` is the user's pin as it
   * stands now: a change announced after the token was minted replaces the pin the token carries.
   */
  function verifySocketTokenNow(token: string): SocketTokenResult {
    const result = socketTokens.verifyNow(token);
    if (!result.ok) return result;
    if (revoked.has(result.sessionId, Date.now())) return { ok: false, reason: "revoked" };
    const changed = pins.current(result.userId, result.issuedAt.getTime());
    return changed === undefined ? result : { ...result, pinnedVersion: changed };
  }

  function findSessionByToken(token: string): Promise<TokenHolder | undefined> {
    return sessionByTokenHash(digest(token)).then(([row]) => row && { user: toUser(row), sessionId: row.session_id });
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
          .insert({
            name: attrs.name,
            email: attrs.email,
            password_hash: passwordHash,
            favorite_sports: attrs.favoriteSports ?? [],
            api_version: attrs.apiVersion ?? CURRENT_VERSION,
          })
          .returning("*");
        return toUser(row!);
      } catch (error) {
        if (isUniqueViolation(error, "users_email_lower_index")) {
          throw new Conflict("that e-mail address is already registered", [
            { pointer: "/email", detail: "is already taken" },
          ]);
        }
        throw error;
      }
    },

    /** Users by ascending id. */
    async listUsers(page: PageRequest): Promise<PageResult<User>> {
      const { rows, more } = await keysetPage<UserRow>(db("users"), "id", "asc", page);
      return { rows: rows.map(toUser), more };
    },

    /** NotFound when the user does not exist, Forbidden when `actorId` is someone else: who may change user `userId`. */
    async assertMayChange(actorId: number, userId: number): Promise<void> {
      await getUser(userId);
      assertSelf(actorId, userId, "change");
    },

    async updateUser(actorId: number, userId: number, changes: UserChanges): Promise<User> {
      await getUser(userId);
      assertSelf(actorId, userId, "change");
      const update: Record<string, unknown> = { updated_at: db.fn.now() };
      if (changes.name !== undefined) update["name"] = changes.name;
      if (changes.apiVersion !== undefined) {
        update["api_version"] = changes.apiVersion;
        update["api_version_changed_at"] = db.fn.now();
      }
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
      // After the commit, stamped now (not the statement's time): a token minted in between carries the old pin.
      if (changes.apiVersion !== undefined)
        pubsub.broadcast(PINS_TOPIC, "user.pin.changed", {
          userId,
          apiVersion: changes.apiVersion,
          changedAt: new Date(),
        });
      return toUser(row);
    },

    /** Deletes the user; their sessions (and the socket tokens minted under them) and memberships go with them. */
    async deleteUser(actorId: number, userId: number): Promise<void> {
      await getUser(userId);
      assertSelf(actorId, userId, "delete");
      const sessionIds = await db.transaction(async (trx) => {
        // The row lock makes a concurrent log-in wait, then fail: no session escapes the list.
        await trx("users").where({ id: userId }).forUpdate().first("id");
        const ids = (await trx("access_tokens").where({ user_id: userId }).delete().returning("id")).map(
          (r: { id: number }) => r.id,
        );
        await recordRevoked(trx, userId, ids);
        await trx("users").where({ id: userId }).delete();
        return ids;
      });
      announceRevoked(sessionIds);
    },

    /**
     * Changes the password when `currentPassword` is right (else Invalid, pointing at
     * `/current_password`) and revokes every other session of the user; `keepSessionId`, the
     * session asking, lives on.
     */
    async changePassword(
      actorId: number,
      userId: number,
      change: { currentPassword: string; password: string; keepSessionId: number; lane?: string | undefined },
    ): Promise<void> {
      await getUser(userId);
      assertSelf(actorId, userId, "change the password of");
      const row = await db<UserRow>("users").where({ id: userId }).first("password_hash");
      if (row === undefined) throw new NotFound("user", userId);
      if (!(await passwords.verify(change.currentPassword, row.password_hash, change.lane))) {
        throw new Invalid("the current password is wrong", [
          { pointer: "/current_password", detail: "does not match the current password" },
        ]);
      }
      const passwordHash = await passwords.hash(change.password, change.lane);
      const sessionIds = await db.transaction(async (trx) => {
        await trx("users").where({ id: userId }).update({ password_hash: passwordHash, updated_at: trx.fn.now() });
        const ids = (
          await trx("access_tokens")
            .where({ user_id: userId })
            .whereNot({ id: change.keepSessionId })
            .delete()
            .returning("id")
        ).map((r: { id: number }) => r.id);
        await recordRevoked(trx, userId, ids);
        return ids;
      });
      announceRevoked(sessionIds);
    },

    /** Checks the credentials and issues a bearer token and a socket token. */
    async createSession(email: string, password: string, lane?: string): Promise<Session> {
      const user = await authenticate(email, password, lane);
      const token = randomBytes(32).toString("base64url");
      const [row] = await db("access_tokens")
        .insert({ user_id: user.id, token_hash: digest(token) })
        .returning("id");
      const sessionId = (row as { id: number }).id;
      return { user, sessionId, token, socketToken: await socketTokens.sign(user.id, sessionId, user.apiVersion) };
    },

    findSessionByToken,

    async findUserByToken(token: string): Promise<User | undefined> {
      return (await findSessionByToken(token))?.user;
    },

    /** Revokes a bearer token at once, and every socket token minted under it. */
    async revokeToken(token: string): Promise<void> {
      const sessionIds = await db.transaction(async (trx) => {
        const rows: Array<{ id: number; user_id: number }> = await trx("access_tokens")
          .where({ token_hash: digest(token) })
          .delete()
          .returning(["id", "user_id"]);
        for (const r of rows) await recordRevoked(trx, r.user_id, [r.id]);
        return rows.map((r) => r.id);
      });
      announceRevoked(sessionIds);
    },

    /** A fresh socket token for the session `sessionId` of the user, carrying `pinnedVersion` (the user's pin now) for sockets that name none. */
    issueSocketToken(userId: number, sessionId: number, pinnedVersion?: ApiVersion): Promise<string> {
      return socketTokens.sign(userId, sessionId, pinnedVersion);
    },

    /** Verifies a socket token without touching the database: signature, expiry, the in-memory revoked set and pin changes. */
    async verifySocketToken(token: string): Promise<SocketTokenResult> {
      return verifySocketTokenNow(token);
    },

    /** Whether the session is in the in-memory revoked set (no database read). */
    isSessionRevoked(sessionId: number): boolean {
      return revoked.has(sessionId, Date.now());
    },

    /** Calls `listener` with the ids of sessions revoked on any node, after the revoked set has them. */
    onSessionsRevoked(listener: (sessionIds: readonly number[]) => void): () => void {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },

    /** Loads the sessions revoked within one socket-token lifetime (boot), and forgets older ones. */
    async loadRevocations(): Promise<number> {
      const since = new Date(Date.now() - ttlMs);
      await db("revoked_sessions").where("revoked_at", "<=", since).delete();
      const rows = await db<RevokedSessionRow>("revoked_sessions")
        .where("revoked_at", ">", since)
        .orderBy("revoked_at");
      for (const row of rows) revoked.add([row.session_id], new Date(row.revoked_at).getTime());
      return rows.length;
    },

    /** Loads the pin changes of the last socket-token lifetime (boot): users' current pins, stamped when they changed. */
    async loadPinChanges(): Promise<number> {
      const since = new Date(Date.now() - ttlMs);
      const rows = await db<UserRow>("users")
        .where("api_version_changed_at", ">", since)
        .orderBy("api_version_changed_at")
        .select("id", "api_version", "api_version_changed_at");
      for (const row of rows) {
        if (isApiVersion(row.api_version))
          pins.set(row.id, row.api_version, new Date(row.api_version_changed_at!).getTime());
      }
      return rows.length;
    },

    /** The same, synchronously: for deciding a WebSocket upgrade inside its callback. */
    verifySocketTokenNow,
  };
}

function digest(token: string): string {
  return hash("sha256", token, "hex");
}

/** What a `User` is made of: every column but the password's hash and the pin's change time. */
type UserFields = Pick<
  UserRow,
  "id" | "name" | "email" | "favorite_sports" | "api_version" | "inserted_at" | "updated_at"
>;
const USER_FIELDS: ReadonlyArray<keyof UserFields> = [
  "id",
  "name",
  "email",
  "favorite_sports",
  "api_version",
  "inserted_at",
  "updated_at",
];
/** The same, qualified, for a join. */
const USERS_FIELDS = USER_FIELDS.map((column) => `users.${column}`);

function toUser(row: UserFields): User {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    favoriteSports: row.favorite_sports,
    // A pin to a version this code no longer has (removed after its sunset) reads as the current one.
    apiVersion: isApiVersion(row.api_version) ? row.api_version : CURRENT_VERSION,
    insertedAt: row.inserted_at,
    updatedAt: row.updated_at,
  };
}
