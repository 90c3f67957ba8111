import test from "ava";
import { API_VERSIONS } from "../../lib/versions.ts";
import { credentialsView, sessionParams, type IssuedCredentials } from "../../representations/sessions.ts";
import { assertLinks } from "../helpers/api.ts";

const session: IssuedCredentials = {
  userId: 7,
  token: "opaque-bearer-token",
  socketToken: "signed.socket.token",
  socketUrl: "ws://127.0.0.1:4001/socket",
};
const socketOnly: IssuedCredentials = {
  userId: 7,
  socketToken: "signed.socket.token",
  socketUrl: "ws://127.0.0.1:4001/socket",
};

for (const version of API_VERSIONS) {
  test(`credentialsView v${version}`, (t) => {
    const login = credentialsView[version](session, { version, basePath: "", viewerId: 7 });
    const fresh = credentialsView[version](socketOnly, { version, basePath: `/v${version}`, viewerId: 7 });
    t.snapshot(login, "a session (POST /sessions)");
    t.snapshot(fresh, "a socket token alone (POST /socket-tokens), under the URL prefix");
    t.deepEqual(Object.keys(login).sort(), ["_links", "socket_token", "token"]);
    t.deepEqual(Object.keys(fresh).sort(), ["_links", "socket_token"]);
    assertLinks(t, login, { version, prefix: "", label: "" });
    assertLinks(t, fresh, { version, prefix: `/v${version}`, label: "" });
    t.is(
      (fresh["_links"] as { socket: { href: string } }).socket.href,
      "ws://127.0.0.1:4001/socket",
      "the socket URL is absolute, never prefixed",
    );
  });
}

test("sessionParams: a log-in's e-mail and password, nothing else", (t) => {
  t.deepEqual(sessionParams.create({ email: "a@example.com", password: "secret words", extra: 1 }), {
    email: "a@example.com",
    password: "secret words",
  });
});
