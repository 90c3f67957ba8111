/**
 * A database a test can take away and bring back: a TCP proxy (tcp-proxy.ts) in front of the
 * PostgreSQL server of DATABASE_URL or, without it, of an in-memory PGlite served over TCP by
 * @electric-sql/pglite-socket. Start the app with `env`, then `proxy.cut()` / `proxy.restore()`.
 *
 *     const db = await startProxiedDatabase()
 *     const app = await startTestServer(db.env)
 *     await db.proxy.cut()
 *     …
 *     await db.close()
 */
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

export interface ProxiedDatabase {
  readonly proxy: TcpProxy;
  /** A PostgreSQL URL that reaches the database through the proxy. */
  readonly databaseUrl: string;
  /**
   * The app's environment for it: `DATABASE_URL`, and for PGlite, which serves every connection
   * from one server session, `DATABASE_PREPARED_STATEMENTS=off` (lib/db/prepared.ts says why).
   */
  readonly env: Record<string, string>;
  /** Closes the proxy and, for PGlite, the database behind it. */
  close(): Promise<void>;
}

export async function startProxiedDatabase(upstream = process.env["DATABASE_URL"]): Promise<ProxiedDatabase> {
  let database = "postgres";
  let target: { host: string; port: number };
  let pglite: { db: PGlite; server: PGLiteSocketServer } | undefined;
  if (upstream !== undefined && upstream !== "") {
    const url = new URL(upstream);
    target = { host: url.hostname, port: Number(url.port || "5432") };
    database = url.pathname.slice(1) || "postgres";
  } else {
    const db = await PGlite.create();
    // maxConnections becomes net.Server#maxConnections: it must cover the app's whole pool.
    const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 32 });
    await server.start();
    pglite = { db, server };
    target = { host: "127.0.0.1", port: Number(server.getServerConn().split(":").pop()) };
  }
  const proxy = await startTcpProxy(target);
  const databaseUrl = `postgres://postgres@127.0.0.1:${proxy.port}/${database}`;
  return {
    proxy,
    databaseUrl,
    env: { DATABASE_URL: databaseUrl, ...(pglite === undefined ? {} : { DATABASE_PREPARED_STATEMENTS: "off" }) },
    async close() {
      await proxy.close();
      await pglite?.server.stop();
      await pglite?.db.close();
    },
  };
}
