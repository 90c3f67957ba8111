/**
 * A WebSocket server whose upgrades are all decided late (after a macrotask, as the cluster's
 * socket quota decides after Redis answers), for tests/realtime/transport.test.ts, which reads its
 * stderr for uWebSockets.js's warnings:
 *
 *     node --import tsx tests/realtime/late-upgrade-server.ts transport   # lib/realtime/transport.ts
 *     node --import tsx tests/realtime/late-upgrade-server.ts own-cork    # bare uWS, upgrade in the response's own cork
 *
 * It prints `port <n>` once listening, echoes every text frame, and prints `closed <code>` for every
 * socket closed by anything but its client's close frame.
 */
import { listen, loadUws } from "../../lib/realtime/transport.ts";

const mode = process.argv[2];
const later = <T>(value: T) => new Promise<T>((resolve) => setImmediate(resolve, value));
const closed = (code: number) => {
  if (code !== 1000 && code !== 1005) console.log(`closed ${code}`);
};

if (mode === "transport") {
  const transport = await listen<null>(
    {
      host: "127.0.0.1",
      port: 0,
      path: "/socket",
      maxPayloadLength: 65_536,
      maxBackpressure: 1 << 20,
      idleTimeoutSeconds: 60,
    },
    {
      upgrade: () => later({ accept: true, session: null, protocol: "" } as const),
      open: (connection) => ({ message: (text) => connection.send(text ?? ""), closed }),
      error: (error) => console.error(error),
    },
  );
  console.log(`port ${transport.port}`);
} else if (mode === "own-cork") {
  const uws = loadUws();
  const app = uws.App();
  app.ws("/socket", {
    idleTimeout: 60,
    upgrade(res, req, context) {
      const key = req.getHeader("sec-websocket-key");
      let aborted = false;
      res.onAborted(() => (aborted = true));
      void later(null).then(() => {
        if (!aborted) res.cork(() => res.upgrade({}, key, "", "", context));
      });
    },
    message: (ws, message) => void ws.send(message, false),
    close: (_ws, code) => closed(code),
  });
  app.listen("127.0.0.1", 0, (socket) => {
    if (socket !== false) console.log(`port ${uws.us_socket_local_port(socket as unknown as never)}`);
  });
} else {
  throw new Error(`usage: late-upgrade-server.ts transport|own-cork (got ${mode})`);
}
