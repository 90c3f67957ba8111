/**
 * Named statements on the embedded PGlite (./prepared.ts sends them here). PGlite's `query` parses
 * and plans every statement again, in six calls into the database (parse, describe, bind, describe,
 * execute, sync), and ignores a statement's name. Here a statement is parsed and described once per
 * database, under its name, and each call is then one call into the database: bind, execute, sync.
 * Values are serialized and rows parsed by the database's own serializers and parsers, as `query`
 * does, so the rows are the same; what is kept is the plan, never a result.
 *
 *     const send = throughPglite(db.client, "hypercast.accounts.user", "select id, name from users where id = $1", (p) => p)
 *     const rows = await send(42)
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Knex } from "knex";
import { onPooledConnection } from "./pooled-query.ts";

type Protocol = typeof import("@electric-sql/pglite").protocol;
type Message = Awaited<ReturnType<PGlite["execProtocol"]>>["messages"][number];
interface Field {
  name: string;
  dataTypeID: number;
}
interface Described {
  parameterTypes: number[];
  fields: Field[];
}

/** The PGlite a knex-pglite client holds, or undefined for any other client. */
export function embeddedPglite(db: Knex): PGlite | undefined {
  const pglite = (db.client as { pglite?: PGlite }).pglite;
  return typeof pglite?.execProtocol === "function" ? pglite : undefined;
}

// Loaded with the first statement: a node on PostgreSQL never holds PGlite's modules.
let protocol: Protocol | undefined;
async function loadProtocol(): Promise<Protocol> {
  return (protocol ??= (await import("@electric-sql/pglite")).protocol);
}

/** Per database, each name's statement: parsed and described once, whichever caller sends it first. */
const prepared = new WeakMap<PGlite, Map<string, { text: string; described: Promise<Described> }>>();

function described(pglite: PGlite, wire: Protocol, name: string, text: string): Promise<Described> {
  let statements = prepared.get(pglite);
  if (statements === undefined) prepared.set(pglite, (statements = new Map()));
  const known = statements.get(name);
  if (known !== undefined) {
    if (known.text !== text) throw new Error(`statement ${name} was prepared with another text`);
    return known.described;
  }
  const once = prepare(pglite, wire, name, text);
  statements.set(name, { text, described: once });
  // A statement the database refused (a table not made yet) is prepared again next time.
  once.catch(() => statements.delete(name));
  return once;
}

/**
 * Sends the statement through knex's one PGlite connection (held for that statement only, so
 * never inside another caller's transaction), with knex's query events around it (./pooled-query.ts).
 */
export function throughPglite<Params extends readonly unknown[], Row>(
  client: Knex.Client,
  name: string,
  text: string,
  values: (params: Params) => unknown[],
): (...params: Params) => Promise<Row[]> {
  return async (...params) => {
    const bound = values(params);
    const wire = protocol ?? (await loadProtocol());
    return onPooledConnection<PGlite, Row>(client, text, bound, (pglite) =>
      pglite.runExclusive(async () => {
        const { parameterTypes, fields } = await described(pglite, wire, name, text);
        const serialized = bound.map((value, i) => serialize(pglite, parameterTypes[i]!, value));
        const message = concat([
          wire.serialize.bind({ statement: name, values: serialized }),
          wire.serialize.execute({}),
          wire.serialize.sync(),
        ]);
        const rows = toRows<Row>(pglite, fields, (await pglite.execProtocol(message)).messages);
        return { rows, rowCount: rows.length };
      }),
    );
  };
}

async function prepare(pglite: PGlite, wire: Protocol, name: string, text: string): Promise<Described> {
  const message = concat([
    wire.serialize.parse({ name, text }),
    wire.serialize.describe({ type: "S", name }),
    wire.serialize.sync(),
  ]);
  const { messages } = await pglite.execProtocol(message);
  const parameters = messages.find((m) => m.name === "parameterDescription") as { dataTypeIDs: number[] } | undefined;
  const row = messages.find((m) => m.name === "rowDescription") as { fields: Field[] } | undefined;
  return {
    parameterTypes: parameters?.dataTypeIDs ?? [],
    fields: (row?.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
  };
}

/** As PGlite's `query` serializes a parameter: null stays null, else the type's serializer, else its text. */
function serialize(pglite: PGlite, type: number, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const serializer = pglite.serializers[type];
  return serializer === undefined ? String(value) : serializer(value);
}

/** As PGlite's `query` parses rows (text format): each field by its type's parser, null as null. */
function toRows<Row>(pglite: PGlite, fields: readonly Field[], messages: readonly Message[]): Row[] {
  const rows: Row[] = [];
  for (const message of messages) {
    if (message.name !== "dataRow") continue;
    const values = (message as unknown as { fields: Array<string | null> }).fields;
    const row: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) {
      const { name, dataTypeID } = fields[i]!;
      const value = values[i] ?? null;
      const parser = pglite.parsers[dataTypeID];
      row[name] = value === null ? null : parser === undefined ? value : parser(value, dataTypeID);
    }
    rows.push(row as Row);
  }
  return rows;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
