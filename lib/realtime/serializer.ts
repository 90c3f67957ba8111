/**
 * The Phoenix V2 JSON serializer (pure): `[join_ref, ref, topic, event, payload]` in text
 * frames. Refs are opaque strings echoed byte for byte; payloads are JSON objects.
 *
 *     decode('[null,"2","phoenix","heartbeat",{}]')
 *     // → { ok: true, message: { joinRef: null, ref: "2", topic: "phoenix", event: "heartbeat", payload: {} } }
 *     encodeReply(null, "2", "phoenix", "ok", {}) // → '[null,"2","phoenix","phx_reply",{"status":"ok","response":{}}]'
 *
 * A malformed frame decodes to an error that says whether a reply can still be addressed: only
 * when the ref is a string (and we therefore can echo it) is the client answered; otherwise the
 * caller closes the socket (see close-codes.ts). The frame rules and why the client needs them:
 * docs/channels-protocol.md §2.
 */

export type Ref = string | null;
export type Payload = Record<string, unknown>;

export interface InboundMessage {
  joinRef: Ref;
  ref: Ref;
  topic: string;
  event: string;
  payload: Payload;
}

/** Where an error reply to a malformed frame goes, when it can be addressed at all. */
export interface ReplyAddress {
  joinRef: Ref;
  ref: string;
  topic: string;
}

export type Decoded =
  { ok: true; message: InboundMessage } | { ok: false; detail: string; replyTo: ReplyAddress | undefined };

export function decode(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, detail: "the frame is not JSON", replyTo: undefined };
  }
  if (!Array.isArray(value))
    return { ok: false, detail: "expected a JSON array [join_ref, ref, topic, event, payload]", replyTo: undefined };
  const frame = value as unknown[];
  const joinRef = frame[0];
  const ref = frame[1];
  const topic = frame[2];
  const event = frame[3];
  const payload = frame[4];
  if (ref !== null && typeof ref !== "string") {
    return { ok: false, detail: `ref must be a string or null, got ${describe(ref)}`, replyTo: undefined };
  }
  let problem: string;
  if (frame.length !== 5) problem = `expected 5 elements [join_ref, ref, topic, event, payload], got ${frame.length}`;
  else if (joinRef !== null && typeof joinRef !== "string")
    problem = `join_ref must be a string or null, got ${describe(joinRef)}`;
  else if (typeof topic !== "string" || topic === "")
    problem = `topic must be a non-empty string, got ${describe(topic)}`;
  else if (typeof event !== "string" || event === "")
    problem = `event must be a non-empty string, got ${describe(event)}`;
  else if (!isObject(payload)) problem = `payload must be a JSON object, got ${describe(payload)}`;
  else return { ok: true, message: { joinRef, ref, topic, event, payload } };
  // Only a string ref can be echoed; a push without a ref (null) cannot be answered.
  const replyTo: ReplyAddress | undefined =
    ref === null
      ? undefined
      : {
          joinRef: typeof joinRef === "string" ? joinRef : null,
          ref,
          topic: typeof topic === "string" && topic !== "" ? topic : "phoenix",
        };
  return { ok: false, detail: problem, replyTo };
}

// `[join_ref, ref, "topic",` at the start of a frame: strings without escapes only, bounded lengths.
const ADDRESS = /^\s*\[\s*(?:null|"([^"\\]{0,100})")\s*,\s*"([^"\\]{1,100})"\s*,\s*"([^"\\]{1,200})"\s*,/;

/**
 * Where a reply to a frame goes, read from its first few hundred characters without parsing the
 * rest: what a refusal needs, at a cost that does not grow with the frame. Undefined when the
 * frame does not start like a V2 message with a string ref (such a frame gets no reply).
 *
 *     peekAddress('["1","7","room:1","message:new",{"body":"…64 KiB…"}]') // → { joinRef: "1", ref: "7", topic: "room:1" }
 */
export function peekAddress(text: string): ReplyAddress | undefined {
  const match = ADDRESS.exec(text.length > 512 ? text.slice(0, 512) : text);
  if (match === null) return undefined;
  return { joinRef: match[1] ?? null, ref: match[2]!, topic: match[3]! };
}

export function encode(joinRef: Ref, ref: Ref, topic: string, event: string, payload: Payload): string {
  return JSON.stringify([joinRef, ref, topic, event, payload]);
}

/**
 * A payload JSON-encoded once and pushed to many sockets: the `presence_state` of the sockets
 * tracked in the same turn, up to N metas (about 100 KiB at 1,500). Its UTF-8 bytes are made
 * once, and each socket's frame goes out as one text message in three fragments (RFC 6455 §5.4,
 * which every client must accept): its own head, these shared bytes, and `]`. In a join storm a
 * string of the whole frame per socket, built, flattened and converted to UTF-8 for each, had been
 * the server's largest cost outside the kernel.
 *
 *     const state = new SharedPayload('{"42":{"metas":[…]}}')
 *     frameHead("1", null, "room:1", "presence_state") // → '["1",null,"room:1","presence_state",'
 *     // the client reassembles '["1",null,"room:1","presence_state",{"42":{"metas":[…]}}]'
 */
export class SharedPayload {
  readonly bytes: Uint8Array;

  constructor(json: string) {
    this.bytes = Buffer.from(json);
  }
}

/** A frame's text before its payload: `frameHead(…) + payloadJson + FRAME_TAIL` is `encode(…)`. */
export function frameHead(joinRef: Ref, ref: Ref, topic: string, event: string): string {
  return `[${JSON.stringify(joinRef)},${JSON.stringify(ref)},${JSON.stringify(topic)},${JSON.stringify(event)},`;
}

export const FRAME_TAIL = "]";

export function encodeReply(joinRef: Ref, ref: Ref, topic: string, status: string, response: Payload): string {
  return JSON.stringify([joinRef, ref, topic, "phx_reply", { status, response }]);
}

export function isObject(value: unknown): value is Payload {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : `a ${typeof value}`;
}
