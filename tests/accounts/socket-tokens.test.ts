import test from "ava";
import { createSocketTokenSigner } from "../../lib/accounts/socket-tokens.ts";

const SECRET = "a-test-secret-key-base-of-at-least-32-characters";
const signer = createSocketTokenSigner(SECRET, 3600);

function replacePart(token: string, index: number, edit: (part: string) => string): string {
  const parts = token.split(".");
  parts[index] = edit(parts[index]!);
  return parts.join(".");
}

const decode = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

test("a signed token verifies to its user and expiry", async (t) => {
  const before = Math.floor(Date.now() / 1000);
  const token = await signer.sign(42, 7);
  t.regex(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a compact JWS");
  const result = await signer.verify(token);
  if (!result.ok) return t.fail(result.reason);
  t.is(result.userId, 42);
  t.is(result.sessionId, 7);
  const exp = result.expiresAt.getTime() / 1000;
  t.true(exp >= before + 3600 && exp <= before + 3601, `exp ${exp}`);
  t.like(decode(token.split(".")[0]!), { alg: "HS256" });
  t.like(decode(token.split(".")[1]!), { sub: "42", sid: 7, aud: "hypercast:socket" });
});

test("what we sign is what jose's jwtVerify accepts: HS256 under the derived key, our audience, sub, sid, api_version, jti, iat and exp", async (t) => {
  const { createHmac } = await import("node:crypto");
  const { jwtVerify, decodeProtectedHeader } = await import("jose");
  const key = createHmac("sha256", SECRET).update("hypercast socket token v1").digest();
  const before = Math.floor(Date.now() / 1000);
  const tokens = [await signer.sign(42, 7, 1), await signer.sign(42, 7)];
  for (const token of tokens) {
    const { payload, protectedHeader } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      audience: "hypercast:socket",
    });
    t.deepEqual(protectedHeader, { alg: "HS256" });
    t.deepEqual(decodeProtectedHeader(token), { alg: "HS256" });
    t.is(payload.sub, "42");
    t.is(payload["sid"], 7);
    t.true(payload.iat! >= before && payload.iat! <= before + 1, `iat ${payload.iat}`);
    t.is(payload.exp, payload.iat! + 3600);
    t.regex(String(payload.jti), /^[0-9a-f-]{36}$/);
  }
  t.is((await jwtVerify(tokens[0]!, key, { audience: "hypercast:socket" })).payload["api_version"], 1);
  t.false("api_version" in (await jwtVerify(tokens[1]!, key, { audience: "hypercast:socket" })).payload);
  t.not(decode(tokens[0]!.split(".")[1]!)["jti"], decode(tokens[1]!.split(".")[1]!)["jti"]);
  // Under another key, jose refuses it as we do.
  const other = createHmac("sha256", "another secret").update("hypercast socket token v1").digest();
  await t.throwsAsync(jwtVerify(tokens[0]!, other, { audience: "hypercast:socket" }));
});

test("an expired token is reported as expired", async (t) => {
  // A negative lifetime signs a token that expired a minute ago: no waiting needed.
  const expired = await createSocketTokenSigner(SECRET, -60).sign(42, 7);
  t.deepEqual(await signer.verify(expired), { ok: false, reason: "expired" });
});

test("a tampered token is invalid", async (t) => {
  const token = await signer.sign(42, 7);
  const otherUser = replacePart(token, 1, (p) => encode({ ...decode(p), sub: "1" }));
  t.deepEqual(await signer.verify(otherUser), { ok: false, reason: "invalid" }, "changed subject");
  const longer = replacePart(token, 1, (p) => encode({ ...decode(p), exp: (decode(p)["exp"] as number) + 86400 }));
  t.deepEqual(await signer.verify(longer), { ok: false, reason: "invalid" }, "changed expiry");
  const badSignature = replacePart(token, 2, (s) => (s[0] === "A" ? "B" : "A") + s.slice(1));
  t.deepEqual(await signer.verify(badSignature), { ok: false, reason: "invalid" }, "changed signature");
  const unsigned = [encode({ alg: "none" }), token.split(".")[1], ""].join(".");
  t.deepEqual(await signer.verify(unsigned), { ok: false, reason: "invalid" }, "alg none");
});

test("a token signed with another secret, or not a token at all, is invalid", async (t) => {
  const foreign = await createSocketTokenSigner(`${SECRET}-other`, 3600).sign(42, 7);
  t.deepEqual(await signer.verify(foreign), { ok: false, reason: "invalid" });
  for (const garbage of ["", "abc", "a.b.c", "....."])
    t.deepEqual(await signer.verify(garbage), { ok: false, reason: "invalid" }, garbage);
});

test("a token for a user id that cannot exist is invalid", async (t) => {
  t.deepEqual(await signer.verify(await signer.sign(0, 7)), { ok: false, reason: "invalid" });
  t.deepEqual(await signer.verify(await signer.sign(-3, 7)), { ok: false, reason: "invalid" });
});

test("a token without a session id, or with a forged one, is invalid", async (t) => {
  const token = await signer.sign(42, 7);
  const { sid: _sid, ...claims } = decode(token.split(".")[1]!);
  t.deepEqual(
    await signer.verify(replacePart(token, 1, () => encode(claims))),
    { ok: false, reason: "invalid" },
    "no sid",
  );
  t.deepEqual(
    await signer.verify(replacePart(token, 1, () => encode({ ...claims, sid: 8 }))),
    { ok: false, reason: "invalid" },
    "changed sid",
  );
  t.deepEqual(await signer.verify(await signer.sign(42, 0)), { ok: false, reason: "invalid" }, "sid 0");
});

test("verifyNow (the synchronous check the socket upgrade uses) refuses what jwtVerify refuses: other audience, future nbf, crit, non-numeric exp", async (t) => {
  const { createHmac } = await import("node:crypto");
  const { SignJWT } = await import("jose");
  const key = createHmac("sha256", SECRET).update("hypercast socket token v1").digest();
  const now = Math.floor(Date.now() / 1000);
  const base = () =>
    new SignJWT({ sid: 7 })
      .setSubject("42")
      .setIssuedAt()
      .setExpirationTime(now + 600);
  t.true(
    signer.verifyNow(await base().setProtectedHeader({ alg: "HS256" }).setAudience("hypercast:socket").sign(key)).ok,
    "control",
  );
  t.deepEqual(
    signer.verifyNow(await base().setProtectedHeader({ alg: "HS256" }).setAudience("someone-else").sign(key)),
    { ok: false, reason: "invalid" },
  );
  t.deepEqual(
    signer.verifyNow(
      await base()
        .setProtectedHeader({ alg: "HS256" })
        .setAudience("hypercast:socket")
        .setNotBefore(now + 600)
        .sign(key),
    ),
    { ok: false, reason: "invalid" },
  );
  // A header of someone else's making is read, not assumed to be ours: `typ` is fine, `crit` and
  // another algorithm are not. Signed here by hand, since jose refuses to sign an unknown `crit`.
  const claims = { sid: 7, sub: "42", aud: "hypercast:socket", iat: now, exp: now + 600 };
  const signedWith = (header: Record<string, unknown>): string => {
    const input = [header, claims].map((part) => Buffer.from(JSON.stringify(part)).toString("base64url")).join(".");
    return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
  };
  t.true(signer.verifyNow(signedWith({ alg: "HS256", typ: "JWT" })).ok, "typ");
  t.true(
    signer.verifyNow(
      await base().setProtectedHeader({ alg: "HS256", typ: "JWT" }).setAudience("hypercast:socket").sign(key),
    ).ok,
  );
  const invalid = { ok: false, reason: "invalid" };
  t.deepEqual(signer.verifyNow(signedWith({ alg: "HS256", crit: ["b64"], b64: true })), invalid, "crit");
  t.deepEqual(signer.verifyNow(signedWith({ alg: "HS512" })), invalid, "another alg under the same key");
  t.deepEqual(signer.verifyNow(signedWith({})), invalid, "no alg");
  const stringExp = await new SignJWT({ exp: String(now + 600) } as unknown as Record<string, unknown>)
    .setSubject("42")
    .setAudience("hypercast:socket")
    .setProtectedHeader({ alg: "HS256" })
    .sign(key);
  t.deepEqual(signer.verifyNow(stringExp), { ok: false, reason: "invalid" });
});

test("verifyNow checks the signature of a token of any size: jose's tokens with claims from a few bytes to 8 KiB", async (t) => {
  const { createHmac } = await import("node:crypto");
  const { SignJWT } = await import("jose");
  const key = createHmac("sha256", SECRET).update("hypercast socket token v1").digest();
  const exp = Math.floor(Date.now() / 1000) + 600;
  // Signing inputs around the HMAC's block (64 bytes) and around the 4 KiB kept for it, and past both.
  for (const padding of [0, 1, 2, 3, 40, 41, 42, 43, 2960, 2990, 3020, 3050, 6000]) {
    const token = await new SignJWT({ sid: 7, pad: "x".repeat(padding) })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("42")
      .setAudience("hypercast:socket")
      .setExpirationTime(exp)
      .sign(key);
    t.like(signer.verifyNow(token), { ok: true, userId: 42, sessionId: 7 }, `padding ${padding}`);
    const tampered = replacePart(token, 2, (signature) => (signature[0] === "A" ? "B" : "A") + signature.slice(1));
    t.deepEqual(signer.verifyNow(tampered), { ok: false, reason: "invalid" }, `padding ${padding}, tampered`);
  }
});
