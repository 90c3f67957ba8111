/**
 * The logger's redaction guard: whatever a caller passes, a password, token, socket token or
 * SECRET_KEY_BASE at the top level or one object down, and an Authorization header under
 * `headers` or `req.headers`, reach the line as "[redacted]"; the caller's objects are untouched.
 * And the default destination: a lone line reaches stdout within a second, the rest at shutdown.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import test from "ava";
import { createLogger, redactSecrets } from "../../lib/telemetry/logger.ts";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger("debug", {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

test("secret fields are redacted at the top level and one object down, the rest kept", (t) => {
  const { logger, lines } = capture();
  const user = { id: 7, password: "hunter2-password" };
  const fields = {
    password: "p",
    token: "t",
    socket_token: "s",
    secret_key_base: "k",
    user,
    route: "/users/:id",
    status: 200,
  };
  logger.info(fields, "line");
  const line = lines[0]!;
  for (const key of ["password", "token", "socket_token", "secret_key_base"]) t.is(line[key], "[redacted]", key);
  t.deepEqual(line["user"], { id: 7, password: "[redacted]" });
  t.is(line["route"], "/users/:id");
  t.is(line["status"], 200);
  t.is(user.password, "hunter2-password", "the caller's object is not changed");
  t.is(fields.token, "t");
});

test("Authorization headers are redacted under headers and req.headers", (t) => {
  const { logger, lines } = capture();
  logger.warn(
    {
      headers: { authorization: "Bearer abc", accept: "x" },
      req: { method: "GET", headers: { authorization: "Bearer def" } },
    },
    "line",
  );
  const line = JSON.stringify(lines[0]);
  t.false(line.includes("abc"), line);
  t.false(line.includes("def"), line);
  t.deepEqual(lines[0]!["headers"], { authorization: "[redacted]", accept: "x" });
});

test("an error carrying a token keeps its message and stack, not the token", (t) => {
  const { logger, lines } = capture();
  const error = Object.assign(new Error("query failed"), { token: "leaked-token" });
  logger.error({ err: error }, "boom");
  const line = JSON.stringify(lines[0]);
  t.false(line.includes("leaked-token"), line);
  t.true(line.includes("query failed"), line);
});

test("lines without secrets pass through as the same object (no copy)", (t) => {
  const fields = { request_id: "r", method: "GET", status: 200, nested: { a: 1 } };
  t.is(redactSecrets(fields), fields);
});

/**
 * The default destination (stdout) buffers lines in 4 KiB batches: a quiet server's line must still
 * reach stdout within about a second, and `flushLogger` must write what is left before an exit.
 */
test("the default destination writes a lone line within a second, and flushLogger the rest before exit", async (t) => {
  const script = `
    import { createLogger, flushLogger } from "./lib/telemetry/logger.ts";
    const logger = createLogger("info");
    logger.info({ n: 1 }, "lone line");
    process.stderr.write("logged\\n");
    setTimeout(async () => {
      logger.info({ n: 2 }, "last line");
      await flushLogger(logger);
      process.exit(0);
    }, 4000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: new URL("../../", import.meta.url),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let loggedAt = Number.NaN;
  const arrivals: Array<{ line: Record<string, unknown>; at: number }> = [];
  let pending = "";
  child.stderr.on("data", (chunk: Buffer) => {
    if (chunk.toString().includes("logged")) loggedAt = performance.now();
  });
  child.stdout.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n")) {
      arrivals.push({ line: JSON.parse(pending.slice(0, end)) as Record<string, unknown>, at: performance.now() });
      pending = pending.slice(end + 1);
    }
  });
  const [code] = (await once(child, "exit")) as [number | null];
  t.is(code, 0);
  t.deepEqual(
    arrivals.map((a) => a.line["msg"]),
    ["lone line", "last line"],
  );
  const waited = arrivals[0]!.at - loggedAt;
  t.true(waited < 2500, `the lone line reached stdout ${Math.round(waited)} ms after it was logged`);
});
