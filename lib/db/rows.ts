/** Row types, declared once, exactly as the tables hold them (see migrations/). */

export interface UserRow {
  id: number;
  name: string;
  email: string;
  password_hash: string;
  favorite_sports: string[];
  /** The pinned API version. */
  api_version: number;
  /** When the pin last changed (PATCH), null if never. */
  api_version_changed_at: Date | null;
  inserted_at: Date;
  updated_at: Date;
}

export interface AccessTokenRow {
  id: number;
  user_id: number;
  token_hash: string;
  inserted_at: Date;
}

export interface RevokedSessionRow {
  session_id: number;
  user_id: number;
  revoked_at: Date;
}

export interface RoomRow {
  id: number;
  name: string;
  private: boolean;
  owner_id: number;
  inserted_at: Date;
}

export interface MembershipRow {
  room_id: number;
  user_id: number;
  inserted_at: Date;
}

export interface MessageRow {
  id: number;
  room_id: number;
  user_id: number;
  body: string;
  inserted_at: Date;
  /** The Idempotency-Key it was posted with, if any. */
  request_key?: string | null;
}
