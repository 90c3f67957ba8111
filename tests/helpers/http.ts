/**
 * A real Hypercast HTTP server on port 0 over real dependencies, and a small client for it.
 *
 *     const app = await startTestServer()
 *     const res = await app.request("GET", "/", { accept: "application/vnd.app.v1+json" })
 *     await app.stop()
 */
import { startServer, type RunningServer } from "../../lib/server.ts";
import { createTestDeps, testConfig, type TestDeps, type TestDepsOptions } from "./deps.ts";

export interface TestResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response has a JSON body, else the text ("" when empty). */
  // biome-ignore lint: test assertions read arbitrary JSON, so the body is deliberately untyped.
  body: any;
  text: string;
}

export interface RequestOptions {
  accept?: string;
  token?: string;
  /** A JSON-serialisable body (sent as application/json unless contentType says otherwise) or a raw string. */
  json?: unknown;
  raw?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface TestServer {
  deps: TestDeps;
  server: RunningServer;
  url: string;
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  /** Registers a user and logs in; returns the user's id, bearer token and socket token. */
  signUp(
    name?: string,
    extra?: Record<string, unknown>,
  ): Promise<{ id: number; token: string; socketToken: string; email: string }>;
  stop(): Promise<void>;
}

let counter = 0;

export async function startTestServer(
  overrides: Record<string, string> = {},
  options: TestDepsOptions = {},
): Promise<TestServer> {
  const deps = await createTestDeps(testConfig(overrides), options);
  const server = await startServer(deps, { host: "127.0.0.1", port: 0, socketPort: 0 });
  const url = server.httpUrl;

  async function request(method: string, path: string, options: RequestOptions = {}): Promise<TestResponse> {
    // A fresh connection per request: a pooled keep-alive socket that the server times out just as
    // fetch reuses it ("fetch failed") is a race a loaded CI machine loses now and then.
    const headers: Record<string, string> = { connection: "close", ...options.headers };
    if (options.accept !== undefined) headers["accept"] = options.accept;
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
    let body: string | Uint8Array | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] = options.contentType ?? "application/json";
    } else if (options.raw !== undefined) {
      body = options.raw;
      if (options.contentType !== undefined) headers["content-type"] = options.contentType;
    }
    const res = await fetch(`${url}${path}`, { method, headers, body });
    const text = await res.text();
    const type = res.headers.get("content-type") ?? "";
    return {
      status: res.status,
      headers: res.headers,
      text,
      body: /json/.test(type) && text !== "" ? JSON.parse(text) : text,
    };
  }

  async function signUp(name = "user", extra: Record<string, unknown> = {}) {
    const email = `${name.toLowerCase().replace(/\W/g, "")}-${process.pid}-${++counter}@example.com`;
    const password = "correct horse battery";
    const created = await request("POST", "/users", { json: { name, email, password, ...extra } });
    if (created.status !== 201) throw new Error(`sign-up failed: ${created.status} ${created.text}`);
    const session = await request("POST", "/sessions", { json: { email, password } });
    if (session.status !== 201) throw new Error(`log-in failed: ${session.status} ${session.text}`);
    return {
      id: created.body.id as number,
      token: session.body.token as string,
      socketToken: session.body.socket_token as string,
      email,
    };
  }

  return {
    deps,
    server,
    url,
    request,
    signUp,
    async stop() {
      await server.stop();
      await deps.dispose();
    },
  };
}
