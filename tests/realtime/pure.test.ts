import test from "ava";
import { parseHandshake } from "../../lib/realtime/handshake.ts";
import { stringParams } from "../../lib/realtime/query.ts";
import { createBucket, createRefusalWindow, refuse, take } from "../../lib/realtime/rate-limit.ts";
import { decode, encode, encodeReply, peekAddress } from "../../lib/realtime/serializer.ts";

test("query: empty segments, Plug-style nesting, encoding, last duplicate wins", (t) => {
  const read = (query: string, ...names: string[]) => Object.fromEntries(stringParams(query, new Set(names)));
  t.deepEqual(
    read("token=abc&&vsn=2.0.0&user[id]=1&a%20b=c+d%21&x=1&x=2&flag", "token", "vsn", "user", "a b", "x", "flag"),
    {
      token: "abc",
      vsn: "2.0.0",
      "a b": "c d!",
      x: "2",
      flag: "",
    },
  );
  t.deepEqual(read("bad=%E0%A4%A&&&", "bad"), { bad: "%E0%A4%A" });
  // Nested is not a string, unless given plainly again later: the last mention decides, as in Plug.
  t.deepEqual(read("token=abc&token[x]=1", "token"), {});
  t.deepEqual(read("token[x]=1&token=abc", "token"), { token: "abc" });
  t.deepEqual(read("tags[]=a&tags[]=b&m[k][j]=v", "tags", "m"), {});
  // Unbalanced brackets are part of a plain key; an encoded name is decoded first.
  t.deepEqual(read("token[=x&tok%65n=y", "token", "token["), { "token[": "x", token: "y" });
  // Only what was asked for.
  t.deepEqual(read("token=abc&vsn=2.0.0", "vsn"), { vsn: "2.0.0" });
});

test("handshake: the query is read as Plug reads it", (t) => {
  t.like(hs("token=t&token[x]=1&vsn=2.0.0"), { ok: false, status: 403 });
  t.like(hs("token[x]=1&token=t&vsn=2.0.0"), { ok: true, token: "t" });
  t.like(hs("token=a%2Bb+c&vsn=2.0.0"), { ok: true, token: "a+b c" });
  t.like(hs("token=t&vsn=2.0.0&vsn[]=2"), { ok: false, status: 403 });
});

const hs = (query: string, protocols = "", path = "/socket/websocket") => parseHandshake({ path, query, protocols });

test("handshake: vsn must be 2.x, api_version 1|2 (absent: undefined, the pin decides), token required", (t) => {
  t.like(hs("token=t&vsn=2.0.0"), { ok: true, token: "t", apiVersion: undefined, protocol: "" });
  t.like(hs("token=t&vsn=2.0.0&api_version=1"), { ok: true, apiVersion: 1 });
  t.like(hs("token=t&vsn=1.0.0"), { ok: false, status: 403 });
  t.like(hs("token=t"), { ok: false, status: 403 });
  t.like(hs("token=t&vsn=2.0.0&api_version=3"), { ok: false, status: 403 });
  t.like(hs("token=t&vsn=2.0.0&api_version=v2"), { ok: false, status: 403 });
  t.like(hs("vsn=2.0.0"), { ok: false, status: 403 });
  t.like(hs("token=&vsn=2.0.0"), { ok: false, status: 403 });
  t.like(hs("token=t&vsn=2.0.0", "", "/other"), { ok: false, status: 404 });
});

test("handshake: the authToken subprotocol is standard base64 of Latin-1, answered with phoenix", (t) => {
  const token = "a+b/c?é";
  const b64 = Buffer.from(token, "latin1").toString("base64").replace(/=+$/, "");
  t.like(hs("vsn=2.0.0", `phoenix, base64url.bearer.phx.${b64}`), { ok: true, token, protocol: "phoenix" });
  t.like(hs("vsn=2.0.0", `phoenix,base64url.bearer.phx.${b64}`), { ok: true, token, protocol: "phoenix" });
  t.like(hs("vsn=2.0.0", "phoenix,base64url.bearer.phx.***"), { ok: false, status: 403 });
});

test("serializer: valid frames, refs stay strings", (t) => {
  t.deepEqual(decode('["3","3","room:1","phx_join",{"a":1}]'), {
    ok: true,
    message: { joinRef: "3", ref: "3", topic: "room:1", event: "phx_join", payload: { a: 1 } },
  });
  t.like(decode('[null,null,"room:1","ping",{}]'), { ok: true, message: { ref: null } });
  t.is(encode(null, null, "room:1", "x", {}), '[null,null,"room:1","x",{}]');
  t.is(encodeReply("1", "2", "t", "ok", {}), '["1","2","t","phx_reply",{"status":"ok","response":{}}]');
});

test("serializer: malformed frames say whether a reply can be addressed", (t) => {
  for (const text of ["nope", "{}", "42", '[null,2,"t","e",{}]', "[]"])
    t.like(decode(text), { ok: false, replyTo: undefined }, text);
  const addressable: Array<[string, string]> = [
    ['[null,"2","t","e"]', "expected 5"],
    ['[null,"2","t","e",{},1]', "expected 5"],
    ['[5,"2","t","e",{}]', "join_ref"],
    ['[null,"2",7,"e",{}]', "topic"],
    ['[null,"2","t",null,{}]', "event"],
    ['[null,"2","t","e",[]]', "payload"],
    ['[null,"2","t","e",null]', "payload"],
  ];
  for (const [text, detail] of addressable) {
    const d = decode(text);
    t.false(d.ok, text);
    if (!d.ok) {
      t.is(d.replyTo?.ref, "2", text);
      t.true(d.detail.includes(detail), `${text}: ${d.detail}`);
    }
  }
  t.like(decode('[null,null,"t","e",null]'), { ok: false, replyTo: undefined });
});

test("token bucket: burst, refill", (t) => {
  const limit = { rate: 10, burst: 3 };
  const b = createBucket(3, 0);
  t.deepEqual(
    [take(b, 0, limit), take(b, 0, limit), take(b, 0, limit), take(b, 0, limit), take(b, 0, limit)],
    [true, true, true, false, false],
  );
  t.true(take(b, 100, limit)); // 100 ms at 10/s = one token
  t.false(take(b, 100, limit));
  t.true(take(b, 10_000, limit));
  t.is(Math.floor(b.tokens), 2); // capped at burst
});

test("refusal window: the (limit+1)th refusal within the window is a flood, spread-out refusals never are", (t) => {
  const w = createRefusalWindow({ limit: 200, windowMs: 10_000 });
  const burst = Array.from({ length: 201 }, (_, i) => refuse(w, i));
  t.is(burst.indexOf(true), 200, "the 201st refusal within 10 s");
  const slow = createRefusalWindow({ limit: 200, windowMs: 10_000 });
  // 1,000 refusals at 19 per second: never more than 190 in any 10 s.
  t.false(Array.from({ length: 1000 }, (_, i) => refuse(slow, i * (1000 / 19))).some(Boolean));
  const edge = createRefusalWindow({ limit: 2, windowMs: 100 });
  t.deepEqual([refuse(edge, 0), refuse(edge, 50), refuse(edge, 101), refuse(edge, 140)], [false, false, false, true]);
});

test("peekAddress reads a frame's reply address from its start, whatever follows", (t) => {
  const big = JSON.stringify(["1", "7", "room:1", "message:new", { body: "x".repeat(65_000) }]);
  t.deepEqual(peekAddress(big), { joinRef: "1", ref: "7", topic: "room:1" });
  t.deepEqual(peekAddress('[null,"2","phoenix","heartbeat",{}]'), { joinRef: null, ref: "2", topic: "phoenix" });
  for (const frame of [
    '[null,null,"t","e",{}]',
    "not json",
    '{"a":1}',
    '["1",2,"t","e",{}]',
    '["1","\\u0032","t","e",{}]',
  ])
    t.is(peekAddress(frame), undefined, frame);
});
