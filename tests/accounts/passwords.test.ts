import test from "ava";
import { createPasswordHasher, decoyHash, hashPassword, verifyPassword } from "../../lib/accounts/passwords.ts";
import { RateLimited, Unavailable } from "../../lib/errors.ts";
import { loadConfig } from "../../lib/config.ts";

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

test("the decoy an unknown e-mail is checked against has a real hash's parameters and lengths, and matches no password", async (t) => {
  // Same scheme, N, r, p, salt and key lengths as a real hash of that cost: verifying against it runs
  // the same scrypt, so an unknown e-mail costs what a wrong password does.
  const shape = (stored: string) => stored.split("$").map((field, i) => (i < 4 ? field : field.length));
  for (const cost of [COST, 17]) {
    const decoy = decoyHash(cost);
    t.deepEqual(shape(decoy), shape(await hashPassword("anything at all", COST)).with(1, String(cost)));
    t.not(decoy, decoyHash(cost), "random salt and key each time");
  }
  t.false(await verifyPassword("decoy password", decoyHash(COST)));
  t.false(await verifyPassword("", decoyHash(COST)));
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
  const corrupt = ["scrypt$x$8$1", "scrypt$$$", "scrypt$10$0$1", "scrypt$40$8$1", "scrypt$10$8$99"].map(
    (params) => `${params}$${salt}$abc`,
  );
  for (const bad of [
    "",
    "plain-text",
    `bcrypt$10$8$1$${salt}$abc`,
    `scrypt$10$8$1$${salt}`,
    stored.slice(0, -4),
    ...corrupt,
  ]) {
    t.false(await verifyPassword("pw-pw-pw-pw", bad), bad);
  }
});

test("the production cost is scrypt N=2^17, r=8, p=1 (OWASP's minimum), with two hashes at a time", (t) => {
  const config = loadConfig({ NODE_ENV: "production", SECRET_KEY_BASE: "x".repeat(32) });
  t.is(config.passwordHashCost, 17);
  t.is(config.passwordHashConcurrency, 2);
});

test("the hashing queue: never more than `concurrency` at once; past the queue 503, past a lane's share 429 — all at once, none lost", async (t) => {
  const passwords = createPasswordHasher({ cost: 14, concurrency: 2, queue: 3, perLane: 2 });
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, passwords.load().running)), 1);
  // One flooder lane asks for 6 at once, four other lanes for one each.
  const flood = Array.from({ length: 6 }, () =>
    passwords.hash("flood", "203.0.113.66").then(
      () => "ok",
      (e: unknown) => e,
    ),
  );
  const others = ["a", "b", "c", "d"].map((lane) =>
    passwords.hash("other", lane).then(
      () => "ok",
      (e: unknown) => e,
    ),
  );
  const [floodResults, otherResults] = await Promise.all([Promise.all(flood), Promise.all(others)]);
  clearInterval(watch);
  t.true(peak <= 2, `peak ${peak}`);
  t.deepEqual(floodResults.slice(0, 2), ["ok", "ok"], "the flooder's share runs");
  t.true(
    floodResults.slice(2).every((r) => r instanceof RateLimited),
    "the rest is refused at once, as a rate limit",
  );
  // 2 running (the flooder's) + a queue of 3: three of the others wait and are served, the fourth finds it full.
  t.deepEqual(otherResults.slice(0, 3), ["ok", "ok", "ok"]);
  t.true(otherResults[3] instanceof Unavailable);
  t.deepEqual(passwords.load(), { running: 0, waiting: 0 }, "every slot was given back");
  t.true(await passwords.verify("other", await passwords.hash("other", "a"), "a"), "the queue serves again");
});
