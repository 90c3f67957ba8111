/**
 * Password hashing with scrypt (memory-hard, in node:crypto). The stored form carries its own
 * parameters, `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`, so the cost can be raised later
 * without invalidating existing hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, logN, BLOCK_SIZE, PARALLELISM);
  return ["scrypt", logN, BLOCK_SIZE, PARALLELISM, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/** True when `password` matches `stored`; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, r, p, salt, hash] = stored.split("$");
  const [n, blockSize, parallelism] = [logN, r, p].map((x) => (x !== undefined && /^\d{1,2}$/.test(x) ? Number(x) : NaN)) as [number, number, number];
  // Bounded like PASSWORD_HASH_COST, so a corrupt row can neither throw nor ask scrypt for gigabytes.
  if (scheme !== "scrypt" || salt === undefined || hash === undefined) return false;
  if (!(n >= 1 && n <= 20 && blockSize >= 1 && blockSize <= 32 && parallelism >= 1 && parallelism <= 16)) return false;
  const expected = Buffer.from(hash, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), n, blockSize, parallelism);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
