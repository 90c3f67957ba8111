/**
 * Conditional requests: strong ETags per representation (version included), If-None-Match → 304
 * on single resources, collections and the static documents, for GET and HEAD.
 */
import test from "ava";
import { noneMatchFails, representationTag } from "../../lib/http/conditional.ts";
import { mediaType } from "../../lib/versions.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

let app: TestServer;
let ada: Awaited<ReturnType<TestServer["signUp"]>>;
let roomId: number;
test.before(async () => {
  app = await startTestServer();
  ada = await app.signUp("Ada");
  roomId = (await app.request("POST", "/rooms", { token: ada.token, json: { name: "lobby" } })).body.id;
});
test.after.always(async () => {
  await app?.stop();
});

const STRONG = /^"[^"]+"$/;

function assertNotModified(t: import("ava").ExecutionContext, res: TestResponse, etag: string): void {
  t.is(res.status, 304);
  t.is(res.text, "");
  t.is(res.headers.get("etag"), etag);
  t.regex(res.headers.get("vary") ?? "", /\baccept\b/i);
}

test("a single resource has a strong ETag that differs between v1 and v2, and If-None-Match gets 304", async (t) => {
  const v1 = await app.request("GET", `/rooms/${roomId}`, { token: ada.token, accept: mediaType(1) });
  const v2 = await app.request("GET", `/rooms/${roomId}`, { token: ada.token, accept: mediaType(2) });
  const [tag1, tag2] = [v1.headers.get("etag")!, v2.headers.get("etag")!];
  t.regex(tag1, STRONG, "strong: no W/ prefix");
  t.regex(tag2, STRONG);
  t.not(tag1, tag2, "the version is part of the tag");

  const again = await app.request("GET", `/rooms/${roomId}`, { token: ada.token, accept: mediaType(2) });
  t.is(again.headers.get("etag"), tag2, "stable while the resource is unchanged");

  const notModified = await app.request("GET", `/rooms/${roomId}`, {
    token: ada.token,
    accept: mediaType(2),
    headers: { "if-none-match": tag2 },
  });
  assertNotModified(t, notModified, tag2);
  const listed = await app.request("GET", `/rooms/${roomId}`, {
    token: ada.token,
    accept: mediaType(1),
    headers: { "if-none-match": `"nope", ${tag1}` },
  });
  assertNotModified(t, listed, tag1);
  // Under /v1 the links keep the prefix: another representation, another tag.
  const prefixed = await app.request("GET", `/v1/rooms/${roomId}`, { token: ada.token });
  t.not(prefixed.headers.get("etag"), tag1);
  assertNotModified(
    t,
    await app.request("GET", `/v1/rooms/${roomId}`, {
      token: ada.token,
      headers: { "if-none-match": prefixed.headers.get("etag")! },
    }),
    prefixed.headers.get("etag")!,
  );
  t.is(listed.headers.get("sunset") !== null, true, "a v1 304 keeps the version headers");

  // v2's tag does not validate v1's representation.
  const crossed = await app.request("GET", `/rooms/${roomId}`, {
    token: ada.token,
    accept: mediaType(1),
    headers: { "if-none-match": tag2 },
  });
  t.is(crossed.status, 200);
  t.is(crossed.body.id, roomId);
});

test("HEAD carries the same ETag and answers 304 the same way", async (t) => {
  const ada = await app.signUp("Ada");
  const get = await app.request("GET", `/users/${ada.id}`, { token: ada.token });
  const head = await app.request("HEAD", `/users/${ada.id}`, { token: ada.token });
  t.is(head.status, 200);
  t.is(head.headers.get("etag"), get.headers.get("etag"));
  const conditional = await app.request("HEAD", `/users/${ada.id}`, {
    token: ada.token,
    headers: { "if-none-match": get.headers.get("etag")! },
  });
  assertNotModified(t, conditional, get.headers.get("etag")!);
});

test("a change makes the old ETag stale", async (t) => {
  const ada = await app.signUp("Ada");
  const before = await app.request("GET", `/users/${ada.id}`, { token: ada.token });
  const tag = before.headers.get("etag")!;
  await app.request("PATCH", `/users/${ada.id}`, { token: ada.token, json: { favorite_sports: ["Chess"] } });
  const after = await app.request("GET", `/users/${ada.id}`, { token: ada.token, headers: { "if-none-match": tag } });
  t.is(after.status, 200);
  t.deepEqual(after.body.favorite_sports, ["Chess"]);
  t.not(after.headers.get("etag"), tag);
});

test.serial("collections have ETags too: 304 until an item is added", async (t) => {
  const first = await app.request("GET", "/rooms?limit=100", { token: ada.token });
  const tag = first.headers.get("etag")!;
  t.regex(tag, STRONG);
  assertNotModified(
    t,
    await app.request("GET", "/rooms?limit=100", { token: ada.token, headers: { "if-none-match": tag } }),
    tag,
  );
  await app.request("POST", "/rooms", { token: ada.token, json: { name: "another" } });
  const changed = await app.request("GET", "/rooms?limit=100", { token: ada.token, headers: { "if-none-match": tag } });
  t.is(changed.status, 200);
  t.not(changed.headers.get("etag"), tag);
  t.is(changed.body._embedded.rooms.length, first.body._embedded.rooms.length + 1);
});

test.serial("no ETag on writes and problems; If-None-Match never turns them into 304", async (t) => {
  const created = await app.request("POST", "/rooms", {
    token: ada.token,
    json: { name: "x" },
    headers: { "if-none-match": "*" },
  });
  t.is(created.status, 201);
  t.is(created.headers.get("etag"), null);
  const missing = await app.request("GET", "/rooms/999999", { token: ada.token, headers: { "if-none-match": "*" } });
  t.is(missing.status, 404);
  t.is(missing.headers.get("etag"), null);
});

test("the OpenAPI documents and /versions are tagged and answer 304", async (t) => {
  for (const path of ["/openapi/v1.json", "/openapi/v2.json", "/versions"]) {
    const res = await app.request("GET", path);
    const tag = res.headers.get("etag")!;
    t.regex(tag, STRONG, path);
    assertNotModified(t, await app.request("GET", path, { headers: { "if-none-match": tag } }), tag);
  }
});

test("the tag covers the media type: equal bytes in two versions get different tags", (t) => {
  const body = JSON.stringify({ id: 1 });
  t.not(
    representationTag(`${mediaType(1)}; charset=utf-8`, body),
    representationTag(`${mediaType(2)}; charset=utf-8`, body),
  );
  t.is(representationTag("application/json", body), representationTag("application/json", body));
});

test("If-None-Match is compared weakly, `*` matches, and Cache-Control: no-cache (which fetch adds) does not disable it", async (t) => {
  t.true(noneMatchFails('"a", W/"b"', '"b"'));
  t.true(noneMatchFails("*", '"b"'));
  t.false(noneMatchFails('"a", "bb"', '"b"'));
  const res = await app.request("GET", "/versions");
  const tag = res.headers.get("etag")!;
  const revalidated = await app.request("GET", "/versions", {
    headers: { "if-none-match": `W/${tag}`, "cache-control": "no-cache" },
  });
  t.is(revalidated.status, 304);
});
