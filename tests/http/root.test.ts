import test from "ava";
import { startTestServer, type TestServer } from "../helpers/http.ts";

let app: TestServer;
test.before(async () => {
  app = await startTestServer();
});
test.after.always(async () => {
  await app?.stop();
});

test("GET / links to every top-level resource in the negotiated version", async (t) => {
  const res = await app.request("GET", "/");
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "application/vnd.app.v2+json; charset=utf-8");
  t.deepEqual(Object.keys(res.body._links).sort(), [
    "room",
    "rooms",
    "self",
    "sessions",
    "socket",
    "socket_tokens",
    "user",
    "users",
  ]);
  t.deepEqual(res.body._links.user, { href: "/users/{id}", type: "application/vnd.app.v2+json", templated: true });
  t.regex(res.body._links.socket.href, /^ws:\/\/127\.0\.0\.1:\d+\/socket$/);
});
