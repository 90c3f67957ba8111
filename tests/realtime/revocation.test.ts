/**
 * Revocation reaches the sockets (README, Resources): `DELETE /sessions`, `DELETE /users/{id}` and a
 * password change revoke the socket tokens minted under the revoked sessions — their open sockets
 * close with 4401 and their upgrades get 403 — while every other session's sockets live on. All
 * over real HTTP and real sockets (the phoenix client and raw frames).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { Socket } from "phoenix";
import WebSocket from "ws";
import { createAccounts } from "../../lib/accounts/index.ts";
import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { CLOSE } from "../../lib/realtime/index.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { startServe, type ServeProcess } from "../helpers/processes.ts";
import { WAIT_MS, within } from "./helpers.ts";
import { openRaw, upgradeStatus, type RawClient } from "./raw.ts";

const PASSWORD = "correct horse battery";
let app: TestServer;

test.before(async () => {
  app = await startTestServer();
});
test.after.always(async () => {
  await app?.stop();
});

const wsUrl = (token: string) => `${app.server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`;

async function logIn(email: string, password = PASSWORD): Promise<{ token: string; socketToken: string }> {
  const res = await app.request("POST", "/sessions", { json: { email, password } });
  if (res.status !== 201) throw new Error(`log-in: ${res.status} ${res.text}`);
  return { token: res.body.token as string, socketToken: res.body.socket_token as string };
}

/** POST a JSON body to a process's API; the parsed body of a 2xx answer. */
async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`POST ${url} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A fresh socket token minted under the bearer token's session. */
async function mint(bearer: string): Promise<string> {
  const res = await app.request("POST", "/socket-tokens", { token: bearer });
  if (res.status !== 201) throw new Error(`socket token: ${res.status} ${res.text}`);
  return res.body.socket_token as string;
}

/** Alive: a heartbeat is answered. */
async function alive(client: RawClient, ref: string): Promise<boolean> {
  client.sendFrame([null, ref, "phoenix", "heartbeat", {}]);
  const frame = await client.nextEvent("phx_reply").catch(() => undefined);
  return frame?.[1] === ref;
}

/** The real phoenix client; resolves once open, records its close codes. */
async function phoenixSocket(token: string): Promise<{ socket: Socket; closes: number[] }> {
  const socket = new Socket(app.server.socketUrl, {
    transport: WebSocket,
    params: { token },
    reconnectAfterMs: () => 60_000, // one close is what we watch; no reconnection storm
  } as ConstructorParameters<typeof Socket>[1]);
  const closes: number[] = [];
  socket.onClose((event: { code: number }) => void closes.push(event.code));
  await within(
    WAIT_MS,
    "socket open",
    new Promise<void>((resolve, reject) => {
      socket.onOpen(() => resolve());
      socket.onError(() => reject(new Error("socket error")));
      socket.connect();
    }),
  );
  return { socket, closes };
}

async function closedWith(client: RawClient): Promise<number> {
  return (await within(WAIT_MS, "close", client.closed)).code;
}

test("DELETE /sessions closes that session's sockets with 4401 and refuses its socket tokens; other sessions live on", async (t) => {
  const me = await app.signUp("logout");
  const other = await logIn(me.email);
  const minted = await mint(me.token);
  const first = await openRaw(wsUrl(me.socketToken));
  const second = await openRaw(wsUrl(minted));
  const phoenix = await phoenixSocket(me.socketToken);
  const survivor = await openRaw(wsUrl(other.socketToken));

  t.is((await app.request("DELETE", "/sessions", { token: me.token })).status, 204);
  t.is(await closedWith(first), CLOSE.REVOKED);
  t.is(await closedWith(second), CLOSE.REVOKED, "a token minted later under the same session too");
  await within(
    WAIT_MS,
    "phoenix close",
    (async () => {
      while (phoenix.closes.length === 0) await new Promise((r) => setTimeout(r, 5));
    })(),
  );
  t.is(phoenix.closes[0], CLOSE.REVOKED, "the phoenix client sees 4401");
  phoenix.socket.disconnect();

  // An attacker replays the revoked tokens at once: every upgrade is refused.
  const statuses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => upgradeStatus(wsUrl(i % 2 === 0 ? me.socketToken : minted))),
  );
  t.deepEqual([...new Set(statuses)], [403]);
  t.is((await app.request("GET", `/users/${me.id}`, { token: me.token })).status, 401);

  t.true(await alive(survivor, "s1"), "the other session's socket is untouched");
  t.is(await upgradeStatus(wsUrl(other.socketToken)), 101);
  t.is(await upgradeStatus(wsUrl(await mint(other.token))), 101);
  survivor.close();
});

test("DELETE /users/{id} closes every socket of every session of the user with 4401; their tokens get 403", async (t) => {
  const me = await app.signUp("deleted");
  const second = await logIn(me.email);
  const bystander = await app.signUp("bystander");
  const sockets = await Promise.all(
    [me.socketToken, second.socketToken, await mint(second.token)].map((token) => openRaw(wsUrl(token))),
  );
  const theirs = await openRaw(wsUrl(bystander.socketToken));

  t.is((await app.request("DELETE", `/users/${me.id}`, { token: me.token })).status, 204);
  t.deepEqual(await Promise.all(sockets.map(closedWith)), [CLOSE.REVOKED, CLOSE.REVOKED, CLOSE.REVOKED]);
  const statuses = await Promise.all(
    [me.socketToken, second.socketToken].flatMap((token) =>
      [token, token, token].map((tk) => upgradeStatus(wsUrl(tk))),
    ),
  );
  t.deepEqual([...new Set(statuses)], [403]);
  t.true(await alive(theirs, "b1"), "another user's socket is untouched");
  theirs.close();
});

test("a password change (v2 PATCH /users/{id}) needs the current password and revokes every other session, not its own", async (t) => {
  const me = await app.signUp("changer");
  const other = await logIn(me.email);
  const mine = await openRaw(wsUrl(me.socketToken));
  const theirs = await openRaw(wsUrl(other.socketToken));
  const v2 = "application/vnd.app.v2+json";

  const wrong = await app.request("PATCH", `/users/${me.id}`, {
    token: me.token,
    accept: v2,
    json: { password: "a brand new password", current_password: "not it at all" },
  });
  t.is(wrong.status, 422);
  t.deepEqual(wrong.body.errors, [{ pointer: "/current_password", detail: "does not match the current password" }]);
  const alone = await app.request("PATCH", `/users/${me.id}`, {
    token: me.token,
    accept: v2,
    json: { password: "a brand new password" },
  });
  t.is(alone.status, 422, "a new password without the current one");
  t.deepEqual(
    alone.body.errors.map((e: { pointer: string }) => e.pointer),
    ["/current_password"],
  );
  const v1 = await app.request("PATCH", `/v1/users/${me.id}`, {
    token: me.token,
    json: { password: "a brand new password", current_password: PASSWORD },
  });
  t.is(v1.status, 422, "v1 has no password change");
  t.true(await alive(theirs, "t0"), "failed attempts revoke nothing");

  const changed = await app.request("PATCH", `/users/${me.id}`, {
    token: me.token,
    accept: v2,
    json: { password: "a brand new password", current_password: PASSWORD, name: "Changed" },
  });
  t.is(changed.status, 200, changed.text);
  t.is(changed.body.name, "Changed");
  t.false(changed.text.includes("password"));
  t.is(await closedWith(theirs), CLOSE.REVOKED);
  t.is(await upgradeStatus(wsUrl(other.socketToken)), 403);
  t.is((await app.request("GET", `/users/${me.id}`, { token: other.token })).status, 401);

  t.true(await alive(mine, "m1"), "the changing session's socket lives on");
  t.is((await app.request("GET", `/users/${me.id}`, { token: me.token })).status, 200);
  t.is(await upgradeStatus(wsUrl(me.socketToken)), 101);
  t.is(
    (await app.request("POST", "/sessions", { json: { email: me.email, password: PASSWORD } })).status,
    401,
    "the old password is gone",
  );
  t.is(
    (await app.request("POST", "/sessions", { json: { email: me.email, password: "a brand new password" } })).status,
    201,
  );
  const stranger = await app.signUp("stranger");
  const foreign = await app.request("PATCH", `/users/${me.id}`, {
    token: stranger.token,
    accept: v2,
    json: { password: "x".repeat(10), current_password: PASSWORD },
  });
  t.is(foreign.status, 403, "self only");
  mine.close();
});

test.serial(
  "revocations outlive a restart: a new `serve` process on the same data refuses a logged-out session's socket token (403); another session's still gets in",
  async (t) => {
    // PGlite on disk under DATA_DIR: the restarted process opens the same database. What refuses the
    // old token after the restart is the revocation list `serve` loads at boot (lib/deps.ts).
    const dataDir = mkdtempSync(join(tmpdir(), "hypercast-revocation-"));
    let serve: ServeProcess | undefined;
    try {
      serve = await startServe({
        name: "revocation",
        env: {
          DATA_DIR: dataDir,
          DATABASE_URL: "",
          REDIS_URL: "",
          LOG_LEVEL: "warn",
          PASSWORD_HASH_COST: "10",
          SECRET_KEY_BASE: randomBytes(32).toString("hex"),
        },
        startTimeoutMs: 60_000,
      });
      const api = serve.httpUrl;
      const sessionOf = async (name: string) => {
        const email = `${name}@example.com`;
        await post(`${api}/users`, { name, email, password: PASSWORD });
        const res = await post(`${api}/sessions`, { email, password: PASSWORD });
        return { token: res["token"] as string, socketToken: res["socket_token"] as string };
      };
      const leaving = await sessionOf("leaving");
      const staying = await sessionOf("staying");
      const socketOf = (token: string) =>
        `${serve!.socketUrl}/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`;
      t.is(await upgradeStatus(socketOf(leaving.socketToken)), 101, "the socket token works before the log-out");
      const out = await fetch(`${api}/sessions`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${leaving.token}` },
      });
      t.is(out.status, 204);
      t.is(await upgradeStatus(socketOf(leaving.socketToken)), 403, "refused by the process that revoked it");

      serve.signal("SIGTERM");
      t.is(await within(WAIT_MS, "serve to exit", serve.exited), 0);
      await serve.restart();
      t.is(
        await upgradeStatus(socketOf(leaving.socketToken)),
        403,
        "refused by the new process, which only knows the revocation from the database",
      );
      t.is(await upgradeStatus(socketOf(staying.socketToken)), 101, "another session's socket token still gets in");
    } finally {
      if (serve?.alive() === true) {
        serve.signal("SIGKILL");
        await serve.exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);

test.serial("loaded revocations refuse the tokens without a database read", async (t) => {
  const me = await app.signUp("restart");
  t.is((await app.request("DELETE", "/sessions", { token: me.token })).status, 204);
  const restarted = createAccounts(app.deps.db, app.deps.config, createLocalPubSub());
  t.like(
    await restarted.verifySocketToken(me.socketToken),
    { ok: true, userId: me.id },
    "before loading, only the signature is known",
  );
  t.true((await restarted.loadRevocations()) >= 1);
  const queries: string[] = [];
  const listener = (q: { sql: string }) => queries.push(q.sql);
  app.deps.db.on("query", listener);
  const result = await restarted.verifySocketToken(me.socketToken);
  app.deps.db.off("query", listener);
  t.deepEqual(result, { ok: false, reason: "revoked" });
  t.deepEqual(queries, []);
});
