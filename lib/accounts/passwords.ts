/**
 * Password hashing with scrypt (memory-hard, in node:crypto). The stored form carries its own
 * parameters, `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`, so the cost can be raised later
 * without invalidating existing hashes. Production cost (PASSWORD_HASH_COST=17): N=2^17, r=8, p=1,
 * OWASP's current minimum for scrypt; each computation takes 128 MiB.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { RateLimited, Unavailable } from "../errors.ts";

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_LENGTH, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, logN, BLOCK_SIZE, PARALLELISM);
  return ["scrypt", logN, BLOCK_SIZE, PARALLELISM, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/**
 * A stored form with the parameters of `logN` whose key nobody knows (random salt and key): checking
 * any password against it costs exactly what checking a real hash of that cost does, and never
 * matches. Made without running scrypt, so having one costs neither a boot-time computation nor its
 * 128 MiB.
 */
export function decoyHash(logN: number): string {
  return [
    "scrypt",
    logN,
    BLOCK_SIZE,
    PARALLELISM,
    randomBytes(16).toString("base64url"),
    randomBytes(KEY_LENGTH).toString("base64url"),
  ].join("$");
}

/** True when `password` matches `stored`; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, r, p, salt, hash] = stored.split("$");
  const [n, blockSize, parallelism] = [logN, r, p].map((x) =>
    x !== undefined && /^\d{1,2}$/.test(x) ? Number(x) : NaN,
  ) as [number, number, number];
  // Bounded like PASSWORD_HASH_COST, so a corrupt row can neither throw nor ask scrypt for gigabytes.
  if (scheme !== "scrypt" || salt === undefined || hash === undefined) return false;
  if (!(n >= 1 && n <= 20 && blockSize >= 1 && blockSize <= 32 && parallelism >= 1 && parallelism <= 16)) return false;
  const expected = Buffer.from(hash, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), n, blockSize, parallelism);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Password hashing behind a small bounded queue: at most `concurrency` scrypt computations run
 * at once (each takes ~128 MiB and a thread of libuv's pool at the production cost), at most
 * `queue` more wait, and one lane (a client address) may hold at most `perLane` of those places.
 * Past a bound the call fails at once, costing nothing: `RateLimited` (429) for a lane that
 * already waits, `Unavailable` (503) when the whole queue is full. So a flood of sign-ups or
 * logins from one address degrades for that address, and everybody else's logins still get a turn.
 *
 *     const passwords = createPasswordHasher({ cost: 17, concurrency: 2, queue: 16 })
 *     const stored = await passwords.hash("s3cret-pass", "203.0.113.9")
 *     await passwords.verify("s3cret-pass", stored, "203.0.113.9") // → true
 */
export interface PasswordHasher {
  hash(password: string, lane?: string): Promise<string>;
  verify(password: string, stored: string, lane?: string): Promise<boolean>;
  /** Computations running and waiting (for tests and metrics). */
  load(): { running: number; waiting: number };
}

export interface PasswordHasherOptions {
  /** log2 of scrypt's N for new hashes. */
  cost: number;
  concurrency: number;
  /** How many may wait for a turn. */
  queue: number;
  /** How many places (running or waiting) one lane may hold; default 2. */
  perLane?: number;
}

export function createPasswordHasher(options: PasswordHasherOptions): PasswordHasher {
  const perLane = options.perLane ?? 2;
  const waiting: Array<() => void> = [];
  const lanes = new Map<string, number>();
  let running = 0;

  async function turn<T>(lane: string | undefined, work: () => Promise<T>): Promise<T> {
    const held = lane === undefined ? 0 : (lanes.get(lane) ?? 0);
    if (lane !== undefined && held >= perLane) {
      throw new RateLimited(
        `${perLane} password checks from this client address are already in progress; retry when they are done`,
      );
    }
    if (running >= options.concurrency && waiting.length >= options.queue) {
      throw new Unavailable("too many password checks are waiting; retry shortly");
    }
    if (lane !== undefined) lanes.set(lane, held + 1);
    try {
      if (running >= options.concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
      else running++;
      try {
        return await work();
      } finally {
        // Hand the slot straight to the next in line, or give it back.
        const next = waiting.shift();
        if (next === undefined) running--;
        else next();
      }
    } finally {
      if (lane !== undefined) {
        const left = (lanes.get(lane) ?? 1) - 1;
        if (left === 0) lanes.delete(lane);
        else lanes.set(lane, left);
      }
    }
  }

  return {
    hash: (password, lane) => turn(lane, () => hashPassword(password, options.cost)),
    verify: (password, stored, lane) => turn(lane, () => verifyPassword(password, stored)),
    load: () => ({ running, waiting: waiting.length }),
  };
}
