/**
 * The process as operators run it: `node --import tsx lib/bin/cli.ts serve` on the embedded
 * database, then SIGTERM. It must print both URLs, serve both, and on SIGTERM stop accepting, let
 * the request in flight finish with its real answer, send leave diffs and close sockets with 1012
 * before exiting 0 (README, Production and shutdown). The request in flight is a POST whose body the test holds back
 * (sent with `Expect: 100-continue`, so the server has surely parsed it when SIGTERM comes).
 */
import { connect, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { openRaw } from "../realtime/raw.ts";
import { SETTINGS } from "../../lib/settings.ts";
import { runCommand, startServe, within, type ServeProcess } from "../helpers/processes.ts";

async function post(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  return (await res.json()) as Record<string, unknown>;
}

/** A raw HTTP/1.1 exchange whose body the test sends when it chooses. */
function slowPost(port: number, path: string, token: string, body: string) {
  const socket: Socket = connect(port, "127.0.0.1");
  let received = "";
  const text = new Promise<string>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
      const final = received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, "");
      const head = final.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(final)?.[1];
      if (head >= 0 && length !== undefined && Buffer.byteLength(final.slice(head + 4)) >= Number(length))
        resolve(final);
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed before a full answer: ${JSON.stringify(received)}`)));
  });
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
  );
  return {
    /** Resolves once the server has parsed the headers and asks for the body. */
    parsed: within(
      15_000,
      "100 Continue",
      new Promise<void>((resolve) => socket.on("data", () => received.startsWith("HTTP/1.1 100") && resolve())),
    ),
    sendBody: () => socket.write(body),
    answer: within(15_000, "the held request's answer", text),
    closed: new Promise<void>((resolve) => socket.on("close", () => resolve())),
  };
}

/** Resolves once a new TCP connection to `port` is refused. */
async function refused(port: number): Promise<void> {
  for (;;) {
    const outcome = await new Promise<string>((resolve) => {
      const probe = connect(port, "127.0.0.1");
      probe.once("connect", () => {
        probe.destroy();
        resolve("connected");
      });
      probe.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    if (outcome === "ECONNREFUSED") return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("serve prints both URLs, serves both, and drains on SIGTERM: refuses new connections, finishes the request in flight, leave diff, 1012, exit 0", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "hypercast-cli-"));
  let serve: ServeProcess | undefined;
  try {
    serve = await startServe({
      name: "cli",
      env: { DATA_DIR: dataDir, LOG_LEVEL: "warn", PASSWORD_HASH_COST: "10", DATABASE_URL: "" },
      startTimeoutMs: 60_000,
    });
    const { port, socketPort } = serve;
    t.true(serve.output().includes(`Hypercast API     http://127.0.0.1:${port}`));
    t.true(serve.output().includes(`Hypercast socket  ws://127.0.0.1:${socketPort}/socket`));

    const api = `http://127.0.0.1:${port}`;
    await post(`${api}/users`, { name: "Cli", email: "cli@example.com", password: "a long password" });
    const session = await post(`${api}/sessions`, { email: "cli@example.com", password: "a long password" });
    const room = await post(`${api}/rooms`, { name: "drain" }, session["token"] as string);
    const topic = `room:${room["id"] as number}`;
    const url = `ws://127.0.0.1:${socketPort}/socket/websocket?vsn=2.0.0&token=${session["socket_token"] as string}`;
    const [watcher, leaver] = [await openRaw(url), await openRaw(url)];
    for (const [i, client] of [watcher, leaver].entries()) {
      client.sendFrame([String(i + 1), String(i + 1), topic, "phx_join", {}]);
      t.is((await client.nextEvent("phx_reply"))[4]["status"], "ok");
    }

    // Let the join diffs go out first (they are coalesced over a short window).
    let joins = 0;
    while (joins < 2) {
      const diff = await watcher.nextEvent("presence_diff");
      for (const entry of Object.values(diff[4]["joins"] as Record<string, { metas: unknown[] }>))
        joins += entry.metas.length;
    }

    const body = JSON.stringify({ name: "in flight at SIGTERM" });
    const inFlight = slowPost(port, "/rooms", session["token"] as string, body);
    let answered = false;
    void inFlight.answer.then(
      () => (answered = true),
      () => {},
    );
    await inFlight.parsed;
    serve.signal("SIGTERM");
    await within(15_000, "new connections refused", refused(port));
    t.false(answered, "the held request was still in flight while new connections were refused");
    inFlight.sendBody();
    const answer = await inFlight.answer;
    t.regex(answer, /^HTTP\/1\.1 201 /, answer);
    const created = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { id: number; name: string };
    t.is(created.name, "in flight at SIGTERM");
    t.true(created.id > (room["id"] as number));
    // The client keeps its keep-alive connection: the server closes it once the answer is out.
    await within(5_000, "the server to close the answered keep-alive connection", inFlight.closed);

    const diff = await watcher.nextEvent("presence_diff");
    const leaves = diff[4]["leaves"] as Record<string, { metas: unknown[] }>;
    t.is(
      Object.values(leaves).reduce((n, entry) => n + entry.metas.length, 0),
      2,
      "both sockets leave before the close",
    );
    t.is((await within(15_000, "close", watcher.closed)).code, 1012);
    t.is((await within(15_000, "close", leaver.closed)).code, 1012);
    t.is(await within(30_000, "exit", serve.exited), 0);
  } finally {
    if (serve?.alive() === true) serve.signal("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** `node --import tsx lib/bin/cli.ts ARGS`: its exit code and output. */
const cli = (args: string[]) =>
  runCommand(process.execPath, ["--import", "tsx", "lib/bin/cli.ts", ...args], { timeoutMs: 30_000 });

test("help, --help and -h (also after serve) print the commands and every setting with its default; an unknown command or an argument exits 2", async (t) => {
  const [help, long, short, unknown, serveHelp, flag] = await Promise.all([
    cli(["help"]),
    cli(["--help"]),
    cli(["-h"]),
    cli(["frobnicate"]),
    cli(["serve", "--help"]),
    cli(["serve", "--port", "5000"]),
  ]);
  t.is(help.code, 0, help.stderr);
  t.true(help.stdout.startsWith("usage: hypercast [serve | migrate | help]"), help.stdout);
  for (const name of Object.keys(SETTINGS)) t.regex(help.stdout, new RegExp(`\\n  ${name} +\\S`), name);
  t.regex(help.stdout, /\n  PORT +HTTP API port \(0 = any free port\) \(default: 4000\)\n/);
  t.regex(help.stdout, /\n  REDIS_URL +redis:\/\/…; unset = single node .* \(Running a cluster\) \(default: unset\)\n/);
  t.notRegex(help.stdout, /`|\*\*|\]\(/, "no Markdown");
  t.is(long.stdout, help.stdout);
  t.is(short.stdout, help.stdout);
  t.is(serveHelp.stdout, help.stdout, "npm start -- --help prints the help, starts nothing");
  // A flag is refused rather than ignored: the server would otherwise start on the default port.
  t.is(flag.code, 2);
  t.regex(
    flag.stderr,
    /^serve takes no arguments, got --port 5000: settings come from the environment \(PORT=5000 npm start\)/,
  );
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^unknown command "frobnicate"; expected one of: serve, migrate, help\n\nusage: hypercast/);
  t.notRegex(unknown.stderr, /\n\s+at /);
});
