/**
 * A real OTLP/HTTP trace receiver for tests: an HTTP server on port 0 that accepts what the
 * OpenTelemetry exporters POST to `/v1/traces`, decodes it — `application/x-protobuf` with a
 * protobuf wire-format reader of opentelemetry-proto's trace.proto fields, `application/json`
 * with JSON.parse — and keeps every span in one shape, so tests assert the same way on both.
 *
 *     const receiver = await startOtlpReceiver()
 *     const config = testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint })
 *     await receiver.until("the producer span", (spans) => spans.some((s) => s.kind === KIND.PRODUCER))
 *     await receiver.close()
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** opentelemetry-proto's Span.SpanKind. */
export const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  links: Array<{ traceId: string; spanId: string }>;
  /** Status.code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, AttributeValue>;
  /** The Content-Type the span arrived with. */
  contentType: string;
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends `/v1/traces`). */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Requests that could not be decoded (each one fails the tests that look). */
  readonly errors: string[];
  /** Resolves once `check(spans)` holds; rejects after `ms`. */
  until(what: string, check: (spans: ReceivedSpan[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const errors: string[] = [];
  const waiters = new Set<() => void>();
  const server = createServer(async (req, res) => {
    const body = await read(req);
    const type = req.headers["content-type"] ?? "";
    try {
      if (req.method !== "POST" || req.url !== "/v1/traces") throw new Error(`unexpected ${req.method} ${req.url}`);
      const decoded = type.startsWith("application/x-protobuf")
        ? decodeProtobuf(body)
        : type.startsWith("application/json")
          ? decodeJson(body)
          : undefined;
      if (decoded === undefined) throw new Error(`unexpected content-type ${type}`);
      for (const span of decoded) spans.push({ ...span, contentType: type });
      res.writeHead(200, { "content-type": type }).end(type.startsWith("application/json") ? "{}" : "");
    } catch (error) {
      errors.push((error as Error).message);
      res.writeHead(400).end();
    }
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    errors,
    until(what, check, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (!check(spans)) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `timed out after ${ms} ms waiting for ${what}; received ${spans.length} spans: ${spans.map((s) => s.name).join(", ")}; errors: ${errors.join("; ")}`,
            ),
          );
        }, ms);
        waiters.add(wake);
        wake();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function read(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

type Decoded = Omit<ReceivedSpan, "contentType">;

// ---- OTLP/JSON (ids are hex strings, enums integers, int64 as strings or numbers) ----

interface JsonKeyValue {
  key: string;
  value: JsonAnyValue;
}
interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}

function decodeJson(body: Buffer): Decoded[] {
  const request = JSON.parse(body.toString()) as {
    resourceSpans?: Array<{
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans?: Array<{
        spans?: Array<{
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind?: number;
          attributes?: JsonKeyValue[];
          links?: Array<{ traceId: string; spanId: string }>;
          status?: { code?: number };
        }>;
      }>;
    }>;
  };
  const out: Decoded[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          kind: s.kind ?? 0,
          attributes: jsonAttributes(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          statusCode: s.status?.code ?? 0,
          resource,
        });
      }
    }
  }
  return out;
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) out[key] = jsonValue(value);
  return out;
}

function jsonValue(v: JsonAnyValue): AttributeValue {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(jsonValue);
  return undefined;
}

// ---- OTLP/protobuf: ExportTraceServiceRequest read field by field (opentelemetry-proto trace.proto) ----

/** One field of a message: its number and its raw value (varint as bigint, the rest as bytes). */
type Field = { no: number; varint: bigint; bytes: Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++];
      if (byte === undefined) throw new Error("truncated varint");
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, varint: varint(), bytes: Buffer.alloc(0) });
    else if (wire === 1) out.push({ no, varint: 0n, bytes: buf.subarray(at, (at += 8)) });
    else if (wire === 5) out.push({ no, varint: 0n, bytes: buf.subarray(at, (at += 4)) });
    else if (wire === 2) {
      const length = Number(varint());
      out.push({ no, varint: 0n, bytes: buf.subarray(at, (at += length)) });
    } else throw new Error(`unsupported wire type ${wire}`);
    if (at > buf.length) throw new Error("truncated message");
  }
  return out;
}

const each = (buf: Buffer, no: number): Buffer[] =>
  fields(buf)
    .filter((f) => f.no === no)
    .map((f) => f.bytes);
const first = (buf: Buffer, no: number): Field | undefined => fields(buf).find((f) => f.no === no);

function decodeProtobuf(body: Buffer): Decoded[] {
  const out: Decoded[] = [];
  for (const rs of each(body, 1)) {
    const resourceBytes = first(rs, 1)?.bytes;
    const resource = resourceBytes === undefined ? {} : protoAttributes(each(resourceBytes, 1));
    for (const ss of each(rs, 2)) {
      for (const s of each(ss, 2)) {
        const status = first(s, 15)?.bytes;
        out.push({
          traceId: first(s, 1)?.bytes.toString("hex") ?? "",
          spanId: first(s, 2)?.bytes.toString("hex") ?? "",
          parentSpanId: first(s, 4)?.bytes.toString("hex") ?? "",
          name: first(s, 5)?.bytes.toString() ?? "",
          kind: Number(first(s, 6)?.varint ?? 0n),
          attributes: protoAttributes(each(s, 9)),
          links: each(s, 13).map((l) => ({
            traceId: first(l, 1)?.bytes.toString("hex") ?? "",
            spanId: first(l, 2)?.bytes.toString("hex") ?? "",
          })),
          statusCode: status === undefined ? 0 : Number(first(status, 3)?.varint ?? 0n),
          resource,
        });
      }
    }
  }
  return out;
}

function protoAttributes(keyValues: Buffer[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of keyValues) {
    const key = first(kv, 1)?.bytes.toString() ?? "";
    const value = first(kv, 2)?.bytes;
    out[key] = value === undefined ? undefined : protoValue(value);
  }
  return out;
}

/** AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 array. */
function protoValue(buf: Buffer): AttributeValue {
  const f = fields(buf)[0];
  if (f === undefined) return undefined;
  switch (f.no) {
    case 1:
      return f.bytes.toString();
    case 2:
      return f.varint !== 0n;
    case 3:
      return Number(BigInt.asIntN(64, f.varint));
    case 4:
      return f.bytes.readDoubleLE(0);
    case 5:
      return each(f.bytes, 1).map(protoValue);
    default:
      return undefined;
  }
}
