/**
 * Rooms: rooms, memberships and messages. The only door to those tables. Every message
 * written (whichever web layer asked) is published on the room's topic through the injected
 * PubSub, as domain data; subscribers render it.
 *
 *     const rooms = createRooms(db, pubsub, { traced: telemetry.tracing })
 *     const room = await rooms.createRoom(ownerId, { name: "lobby" })
 *     await rooms.createMessage(ownerId, room.id, "hello") // → broadcast "message.created" on "room:1"
 *     rooms.onAccessEnded(({ roomId, userId, reason }) => …) // on every node
 *
 * Access can end: a member removed from a private room, or a room deleted. Each such write
 * publishes an `AccessEnded` on `ROOM_ACCESS_TOPIC` after its commit, which every node receives
 * (through the cluster PubSub), so readers that decided earlier — open channels, cached join
 * decisions — can let go.
 */
import type { Db } from "../db/index.ts";
import { keysetPage, type PageRequest, type PageResult } from "../db/keyset.ts";
import { statement } from "../db/prepared.ts";
import type { MembershipRow, MessageRow, RoomRow } from "../db/rows.ts";
import { Forbidden, Invalid, NotFound } from "../errors.ts";
import type { PubSub } from "../pubsub/index.ts";
import { createMessageWriter, type MessageWithAuthor } from "./message-writer.ts";

export interface Room {
  id: number;
  name: string;
  private: boolean;
  ownerId: number;
  insertedAt: Date;
}

export interface Membership {
  roomId: number;
  userId: number;
  insertedAt: Date;
}

export interface Message {
  id: number;
  roomId: number;
  body: string;
  insertedAt: Date;
  author: { id: number; name: string };
}

/** Who lost read access to a room: one user (`removed`), or everyone (`deleted`, `userId` null). */
export interface AccessEnded {
  roomId: number;
  userId: number | null;
  reason: "removed" | "deleted";
}

/** The PubSub topic on which access endings travel (one topic for all rooms: they are rare); event `room.access.ended`. */
export const ROOM_ACCESS_TOPIC = "rooms:access";

export type JoinDecision = { ok: true; room: Room } | { ok: false; reason: "not_found" | "unauthorized" };

/** The PubSub topic of a room, shared with the realtime tier. */
export function roomTopic(roomId: number): string {
  return `room:${roomId}`;
}

/** The domain event under which new messages are published (lib/pubsub/events.ts); sockets see it as `message:new`. */
export const MESSAGE_CREATED = "message.created";

export type Rooms = ReturnType<typeof createRooms>;

export function createRooms(db: Db, pubsub: PubSub, options: { traced?: () => boolean } = {}) {
  function announce(ended: AccessEnded): void {
    pubsub.broadcast(ROOM_ACCESS_TOPIC, "room.access.ended", ended);
  }

  function visibleRooms(viewerId: number) {
    return db<RoomRow>("rooms").where((q) =>
      q
        .where("private", false)
        .orWhereExists(
          db("memberships").whereRaw("memberships.room_id = rooms.id").andWhere("memberships.user_id", viewerId),
        ),
    );
  }

  /** The room as the viewer may see it: a private room they are not in does not exist for them. */
  async function getRoom(viewerId: number, roomId: number): Promise<Room> {
    const row = await visibleRooms(viewerId).andWhere("id", roomId).first();
    if (row === undefined) throw new NotFound("room", roomId);
    return toRoom(row);
  }

  // A join's lookups (when the room channel has no decision to share): statements compiled once
  // and prepared, naming their columns (../db/prepared.ts).
  const roomById = statement<[number], RoomRow>(db, "rooms.room", (id) => db("rooms").where({ id }).first(ROOM_FIELDS));
  const membership = statement<[number, number], { user_id: number }>(db, "rooms.membership", (roomId, userId) =>
    db("memberships").where({ room_id: roomId, user_id: userId }).first("user_id"),
  );

  // Group commit for messages without an Idempotency-Key: one statement per batch (./message-writer.ts).
  const writer = createMessageWriter(
    db,
    (row) => {
      const message = toMessage(row);
      pubsub.broadcast(roomTopic(message.roomId), MESSAGE_CREATED, message);
      return message;
    },
    options,
  );

  function messagesWithAuthors() {
    return db<MessageRow>("messages")
      .join("users", "users.id", "messages.user_id")
      .select("messages.*", "users.name as author_name");
  }

  return {
    getRoom,

    async createRoom(ownerId: number, attrs: { name: string; private?: boolean | undefined }): Promise<Room> {
      return db.transaction(async (trx) => {
        const [row] = await trx<RoomRow>("rooms")
          .insert({ name: attrs.name, private: attrs.private ?? false, owner_id: ownerId })
          .returning("*");
        await trx("memberships").insert({ room_id: row!.id, user_id: ownerId });
        return toRoom(row!);
      });
    },

    /** Public rooms and the private rooms the viewer belongs to, by ascending id. */
    async listRooms(viewerId: number, page: PageRequest): Promise<PageResult<Room>> {
      const { rows, more } = await keysetPage<RoomRow>(visibleRooms(viewerId), "id", "asc", page);
      return { rows: rows.map(toRoom), more };
    },

    /** Adds `userId` to the room (owner only). Adding an existing member changes nothing. */
    async addMember(
      actorId: number,
      roomId: number,
      userId: number,
    ): Promise<{ membership: Membership; created: boolean }> {
      const room = await getRoom(actorId, roomId);
      if (room.ownerId !== actorId) throw new Forbidden(`only the owner of room ${roomId} may add members`);
      const user = await db("users").where({ id: userId }).first("id");
      if (user === undefined)
        throw new Invalid("no such user", [{ pointer: "/user_id", detail: `user ${userId} does not exist` }]);
      const [inserted] = await db<MembershipRow>("memberships")
        .insert({ room_id: roomId, user_id: userId })
        .onConflict(["room_id", "user_id"])
        .ignore()
        .returning("*");
      const row =
        inserted ?? (await db<MembershipRow>("memberships").where({ room_id: roomId, user_id: userId }).first());
      return { membership: toMembership(row!), created: inserted !== undefined };
    },

    /**
     * Ends a membership: the owner may remove anyone but themself (Invalid), a member may remove
     * themself, nobody else anyone (Forbidden). From a private room this ends the user's access.
     */
    async removeMember(actorId: number, roomId: number, userId: number): Promise<void> {
      const room = await getRoom(actorId, roomId);
      if (actorId !== room.ownerId && actorId !== userId)
        throw new Forbidden(`only the owner of room ${roomId} or the member themself may remove a member`);
      if (userId === room.ownerId)
        throw new Invalid("the owner cannot be removed from their room", [
          { pointer: "/user_id", detail: "is the room's owner" },
        ]);
      // `returning`, not the affected count: the embedded driver reports no count.
      const removed = await db("memberships").where({ room_id: roomId, user_id: userId }).delete().returning("user_id");
      if (removed.length === 0) throw new NotFound("membership", userId);
      if (room.private) announce({ roomId, userId, reason: "removed" });
    },

    /** Deletes the room with its memberships and messages (owner only). */
    async deleteRoom(actorId: number, roomId: number): Promise<void> {
      const room = await getRoom(actorId, roomId);
      if (room.ownerId !== actorId) throw new Forbidden(`only the owner of room ${roomId} may delete it`);
      await db("rooms").where({ id: roomId }).delete();
      announce({ roomId, userId: null, reason: "deleted" });
    },

    /** Calls `listener` for every access that ends, on any node (after the write committed). */
    onAccessEnded(listener: (ended: AccessEnded) => void): () => void {
      return pubsub.subscribe(ROOM_ACCESS_TOPIC, (message) => {
        if (message.event === "room.access.ended") listener(message.payload);
      });
    },

    /** Members by ascending user id. */
    async listMembers(viewerId: number, roomId: number, page: PageRequest): Promise<PageResult<Membership>> {
      await getRoom(viewerId, roomId);
      const query = db("memberships").where({ room_id: roomId });
      const { rows, more } = await keysetPage<MembershipRow>(query, "user_id", "asc", page);
      return { rows: rows.map(toMembership), more };
    },

    /** Newest first. */
    async listMessages(viewerId: number, roomId: number, page: PageRequest): Promise<PageResult<Message>> {
      await getRoom(viewerId, roomId);
      const query = messagesWithAuthors().where("messages.room_id", roomId);
      const { rows, more } = await keysetPage<MessageWithAuthor>(query, "messages.id", "desc", page);
      return { rows: rows.map(toMessage), more };
    },

    async getMessage(viewerId: number, roomId: number, messageId: number): Promise<Message> {
      await getRoom(viewerId, roomId);
      const row = await messagesWithAuthors().where({ "messages.room_id": roomId, "messages.id": messageId }).first();
      if (row === undefined) throw new NotFound("message", messageId);
      return toMessage(row);
    },

    /**
     * Stores and broadcasts a message (stored first, broadcast before this resolves, broadcasts in
     * the order the messages were stored). Messages without a key written at the same time share
     * one statement (./message-writer.ts), which checks read access as `getRoom` does. With a `requestKey` (the request's Idempotency-Key) a second
     * call with the same author and key returns the message the first stored instead of storing
     * another — even when the first call's answer was lost after its insert — and broadcasts it
     * again (same id), since whether the first call got as far as its broadcast is unknown.
     */
    async createMessage(
      authorId: number,
      roomId: number,
      body: string,
      options: { requestKey?: string | undefined } = {},
    ): Promise<Message> {
      const key = options.requestKey ?? null;
      if (key === null) {
        const stored = await writer.write({ roomId, userId: authorId, body });
        if (stored !== undefined) return stored;
        // Not inserted: the room is gone or not readable; the single path below says which.
      }
      await getRoom(authorId, roomId);
      // One statement: once the row is stored nothing else can fail before the broadcast.
      const inserted = (await db.raw(
        `with inserted as (
           insert into messages (room_id, user_id, body, request_key) values (?, ?, ?, ?)
           on conflict (user_id, request_key) where request_key is not null do nothing
           returning *)
         select inserted.*, users.name as author_name from inserted join users on users.id = inserted.user_id`,
        [roomId, authorId, body, key],
      )) as { rows: MessageWithAuthor[] };
      let row = inserted.rows[0];
      if (row === undefined && key !== null) {
        row = await db<MessageRow>("messages")
          .join("users", "users.id", "messages.user_id")
          .where({ "messages.user_id": authorId, "messages.request_key": key })
          .first<MessageWithAuthor | undefined>("messages.*", "users.name as author_name");
        if (row !== undefined && (row.room_id !== roomId || row.body !== body)) {
          throw new Invalid("this Idempotency-Key already posted a different message; use a new key for a new message");
        }
      }
      if (row === undefined) throw new Error("the message insert returned no row");
      const message = toMessage(row);
      pubsub.broadcast(roomTopic(roomId), MESSAGE_CREATED, message);
      return message;
    },

    /** Whether `userId` may join the room's channel; a refusal says why, as the channel reports it. */
    async authorizeJoin(userId: number, roomId: number): Promise<JoinDecision> {
      const [row] = await roomById(roomId);
      if (row === undefined) return { ok: false, reason: "not_found" };
      if (row.private && (await membership(roomId, userId)).length === 0) return { ok: false, reason: "unauthorized" };
      return { ok: true, room: toRoom(row) };
    },
  };
}

const ROOM_FIELDS: ReadonlyArray<keyof RoomRow> = ["id", "name", "private", "owner_id", "inserted_at"];

function toRoom(row: RoomRow): Room {
  return { id: row.id, name: row.name, private: row.private, ownerId: row.owner_id, insertedAt: row.inserted_at };
}

function toMembership(row: MembershipRow): Membership {
  return { roomId: row.room_id, userId: row.user_id, insertedAt: row.inserted_at };
}

function toMessage(row: MessageWithAuthor): Message {
  return {
    id: row.id,
    roomId: row.room_id,
    body: row.body,
    insertedAt: row.inserted_at,
    author: { id: row.user_id, name: row.author_name },
  };
}
