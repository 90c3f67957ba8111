/**
 * Phoenix Channels V2 frames as the load generator writes and reads them (pure), and the delivery
 * marker every published payload carries.
 *
 *     encodeFrame("1", "1", "room:1", "phx_join", '{"presence":false}')
 *     // → '["1","1","room:1","phx_join",{"presence":false}]'
 *     const prefix = markerPrefix("k3x9")                // → "hcl-k3x9-": one per run
 *     formatMarker(prefix, 2, 17, 1733059200123.456)    // → "hcl-k3x9-2-17-1733059200123.456"
 *     findMarker(Buffer.from('[null,null,"room:1","message:new",{"body":"hcl-k3x9-2-17-5.5"}]'), Buffer.from(prefix))
 *     // → { publisher: 2, seq: 17, scheduledMs: 5.5 }
 *
 * A marker names its publisher, its sequence number and its *scheduled* send time (ms on the
 * machine's wall clock), so a subscriber in any process on the same machine can account for the
 * delivery and take its latency from when the message was due, not from when a lagging client
 * managed to send it. Markers are found by a byte search, without parsing the frame: fan-out frames
 * are the hot path. Markers use only `[a-z0-9.-]`, so no JSON encoder escapes them. Each run has an
 * id of its own in the prefix, so that several runs (several client machines) can load one topic
 * together: each accounts for its own publishers' messages and ignores the others'.
 */

/** The marker prefix of a run; `runId` is `[a-z0-9]+`. */
export function markerPrefix(runId: string): string {
  if (!/^[a-z0-9]+$/.test(runId)) throw new Error(`a run id is [a-z0-9]+, got ${JSON.stringify(runId)}`);
  return `hcl-${runId}-`;
}

export type Frame = [string | null, string | null, string, string, unknown];

export interface Marker {
  publisher: number;
  seq: number;
  scheduledMs: number;
}

/** One V2 frame as text; `payloadJson` is already JSON. */
export function encodeFrame(
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payloadJson: string,
): string {
  return `[${joinRef === null ? "null" : JSON.stringify(joinRef)},${ref === null ? "null" : JSON.stringify(ref)},${JSON.stringify(topic)},${JSON.stringify(event)},${payloadJson}]`;
}

export function formatMarker(prefix: string, publisher: number, seq: number, scheduledMs: number): string {
  return `${prefix}${publisher}-${seq}-${scheduledMs.toFixed(3)}`;
}

/**
 * A payload template: JSON text in which every `$MARK` is replaced by the marker. Checked once, at
 * start: it must be a JSON object containing `$MARK` inside a string.
 */
export function compilePayload(template: string): (marker: string) => string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(template);
  } catch (error) {
    throw new Error(`--payload must be JSON, got ${template} (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new Error(`--payload must be a JSON object, got ${template}`);
  const parts = template.split("$MARK");
  if (parts.length < 2)
    throw new Error(`--payload must contain $MARK inside a string (the delivery marker), got ${template}`);
  return (marker) => parts.join(marker);
}

/**
 * The first marker of this run (`prefix` as bytes) in a frame, or undefined. Called for every frame
 * a subscriber receives, so it creates no function: under tsx every function created at run time
 * is also given its name with `Object.defineProperty`.
 */
export function findMarker(data: Buffer, prefix: Buffer): Marker | undefined {
  const at = data.indexOf(prefix);
  if (at === -1) return undefined;
  const publisherAt = at + prefix.length;
  const publisherEnd = digitsEnd(data, publisherAt);
  if (publisherEnd === publisherAt || data[publisherEnd] !== 0x2d) return undefined;
  const seqAt = publisherEnd + 1;
  const seqEnd = digitsEnd(data, seqAt);
  if (seqEnd === seqAt || data[seqEnd] !== 0x2d) return undefined;
  const timeAt = seqEnd + 1;
  let timeEnd = timeAt;
  while (timeEnd < data.length && (isDigit(data[timeEnd]!) || data[timeEnd] === 0x2e)) timeEnd++;
  const scheduledMs = Number(data.toString("latin1", timeAt, timeEnd));
  if (timeEnd === timeAt || !Number.isFinite(scheduledMs)) return undefined;
  return { publisher: decimal(data, publisherAt, publisherEnd), seq: decimal(data, seqAt, seqEnd), scheduledMs };
}

const isDigit = (byte: number): boolean => byte >= 0x30 && byte <= 0x39;

/** Where the run of decimal digits starting at `from` ends. */
function digitsEnd(data: Buffer, from: number): number {
  let i = from;
  while (i < data.length && isDigit(data[i]!)) i++;
  return i;
}

/** The value of the decimal digits in `data[from, to)`. */
function decimal(data: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (data[i]! - 0x30);
  return n;
}

/** Parses a frame that is not a marked delivery; undefined when it is not a V2 frame. */
export function parseFrame(data: Buffer): Frame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 5 || typeof value[2] !== "string" || typeof value[3] !== "string")
    return undefined;
  return value as Frame;
}

/** A wall-clock timestamp in ms with sub-ms precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
