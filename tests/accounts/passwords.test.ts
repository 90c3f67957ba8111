import test from "ava";
import { hashPassword, verifyPassword } from "../../lib/accounts/passwords.ts";

const COST = 10; // the cheapest the configuration allows, to keep tests fast

test("a hash is scrypt$<log2 N>$<r>$<p>$<salt>$<key>, salted afresh each time", async (t) => {
  const first = await hashPassword("correct horse battery", COST);
  const second = await hashPassword("correct horse battery", COST);
  t.regex(first, /^scrypt\$10\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  t.not(first, second, "a random salt per hash");
  t.false(first.includes("correct horse battery"));
});

test("verifyPassword accepts the password and rejects any other", async (t) => {
  const stored = await hashPassword("correct horse battery", COST);
  t.true(await verifyPassword("correct horse battery", stored));
  t.false(await verifyPassword("correct horse batterY", stored));
  t.false(await verifyPassword("", stored));
  t.false(await verifyPassword("correct horse battery ", stored));
});

test("the stored parameters are used, so a hash made at another cost still verifies", async (t) => {
  const stored = await hashPassword("s3cret-pass", 11);
  t.true(stored.startsWith("scrypt$11$8$1$"));
  t.true(await verifyPassword("s3cret-pass", stored));
});

test("passwords are compared in Unicode NFC", async (t) => {
  const stored = await hashPassword("caf\u00e9 au lait", COST);
  t.true(await verifyPassword("cafe\u0301 au lait", stored));
});

test("a malformed stored hash never matches", async (t) => {
  const stored = await hashPassword("pw-pw-pw-pw", COST);
  const [, , , , salt] = stored.split("$");
  const corrupt = ["scrypt$x$8$1", "scrypt$$$", "scrypt$10$0$1", "scrypt$40$8$1", "scrypt$10$8$99"].map((params) => `${params}$${salt}$abc`);
  for (const bad of ["", "plain-text", `bcrypt$10$8$1$${salt}$abc`, `scrypt$10$8$1$${salt}`, stored.slice(0, -4), ...corrupt]) {
    t.false(await verifyPassword("pw-pw-pw-pw", bad), bad);
  }
});
