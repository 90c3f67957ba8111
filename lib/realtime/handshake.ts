/**
 * The WebSocket upgrade decision (pure): which path, protocol version, API version and token a
 * request carries, or why it is refused. Token verification itself happens in the caller.
 *
 *     parseHandshake({ path: "/socket/websocket", query: "token=t&vsn=2.0.0", protocols: "" })
 *     // → { ok: true, token: "t", apiVersion: undefined, protocol: "" } (no api_version: the caller's pin decides)
 *
 * Rules: `vsn` must be 2.x (V1 JSON objects are not served);
 * the token comes from the `token` query parameter or from the `base64url.bearer.phx.<b64>`
 * subprotocol, which despite its name holds *standard* base64 without padding of the token's
 * Latin-1 bytes. When the client offered subprotocols we select `phoenix` and never echo the
 * token protocol (docs/channels-protocol.md §1).
 */
import { parseApiVersion, type ApiVersion } from "../versions.ts";
import { stringParams } from "./query.ts";

export const SOCKET_PATH = "/socket/websocket";
const TOKEN_PROTOCOL_PREFIX = "base64url.bearer.phx.";
/** The query parameters the upgrade reads; the rest of the query is not parsed. */
const PARAMS: ReadonlySet<"vsn" | "api_version" | "token"> = new Set(["vsn", "api_version", "token"] as const);

export interface HandshakeRequest {
  path: string;
  query: string;
  /** The raw `Sec-WebSocket-Protocol` header ("" when absent). */
  protocols: string;
}

export type Handshake =
  /** `apiVersion` undefined: the socket names none (it gets its user's pin, else the default). */
  | { ok: true; token: string; apiVersion: ApiVersion | undefined; protocol: string }
  | { ok: false; status: 403 | 404; reason: string };

export function parseHandshake(request: HandshakeRequest): Handshake {
  if (request.path !== SOCKET_PATH) return { ok: false, status: 404, reason: `no socket at ${request.path}` };
  const query = stringParams(request.query, PARAMS);
  const vsn = query.get("vsn");
  if (vsn === undefined || !/^2(\.\d+){0,2}$/.test(vsn)) {
    return { ok: false, status: 403, reason: `unsupported vsn ${JSON.stringify(vsn ?? null)}, expected 2.x` };
  }
  const versionParam = query.get("api_version");
  const apiVersion = versionParam === undefined ? undefined : parseApiVersion(versionParam);
  if (versionParam !== undefined && apiVersion === undefined)
    return { ok: false, status: 403, reason: `unsupported api_version ${versionParam}` };

  const offered =
    request.protocols === ""
      ? []
      : request.protocols
          .split(",")
          .map((p) => p.trim())
          .filter((p) => p !== "");
  let token = query.get("token");
  for (const protocol of offered) {
    if (!protocol.startsWith(TOKEN_PROTOCOL_PREFIX)) continue;
    const decoded = decodeBearer(protocol.slice(TOKEN_PROTOCOL_PREFIX.length));
    if (decoded === undefined) return { ok: false, status: 403, reason: "malformed authToken subprotocol" };
    token = decoded;
  }
  if (token === undefined || token === "") return { ok: false, status: 403, reason: "missing token" };
  return { ok: true, token, apiVersion, protocol: offered.includes("phoenix") ? "phoenix" : "" };
}

function decodeBearer(encoded: string): string | undefined {
  if (encoded === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 === 1) return undefined;
  // btoa() treats the token as Latin-1, one byte per character.
  return Buffer.from(encoded, "base64").toString("latin1");
}
