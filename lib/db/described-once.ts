/**
 * A named statement on pg, described once per connection. pg's own `Query` asks PostgreSQL to
 * describe the result (`Describe`, answered by `RowDescription`) on every execution, and then
 * builds the fields' parsers and an empty row to copy from, for a result whose shape cannot have
 * changed: a prepared statement's result type is fixed for as long as it lives on its connection
 * (PostgreSQL refuses an execution whose plan would change it, "cached plan must not change result
 * type"). So the first execution on a connection describes it and keeps its shape (names and
 * parsers); later ones send only `Bind`, `Execute` and `Sync`, and each row is built by that shape.
 * It is sent as a pg submittable (`client.query(submittable)`, the interface pg-cursor uses), on
 * the client's own queue, with its type parsers.
 *
 *     const { rows } = await describedOnce(client, "hypercast.accounts.user", "select id from users where id = $1", [42])
 *
 * A failed execution forgets the shape (the next one describes again), and so does a new
 * connection. Behind a pooler that prepares statements for its clients on server connections of
 * its own (PgBouncer 1.21 and later), a migration that changes a selected column's type can reach a
 * connection without an error: restart Hypercast with such a migration, or send statements
 * unprepared (DATABASE_PREPARED_STATEMENTS=off).
 *
 * What it reads of pg beyond the submittable interface: the connection's `parsedStatements` and
 * `submittedNamedStatements`, as pg's `Query` does, to parse a name once per connection.
 */
import { createRequire } from "node:module";
import type { ClientBase } from "pg";

/** pg's own mapping of a JavaScript value to a parameter's text (Dates, arrays, Buffers, JSON), as its Query binds them. */
const { prepareValue } = createRequire(import.meta.url)("pg/lib/utils.js") as {
  prepareValue: (value: unknown) => unknown;
};

/** A result's columns and how each of their text values is read. */
interface Shape {
  names: readonly string[];
  parsers: readonly ((text: string) => unknown)[];
}

/** The parts of pg's protocol connection a statement writes to (pg-protocol's messages). */
interface Connection {
  parsedStatements: Record<string, string | undefined>;
  submittedNamedStatements: Record<string, string | undefined>;
  stream: { cork?: () => void; uncork?: () => void };
  parse(message: { name: string; text: string }): void;
  bind(message: { statement: string; values: readonly unknown[]; valueMapper: (value: unknown) => unknown }): void;
  describe(message: { type: "P"; name: string }): void;
  execute(message: { portal: string }): void;
  sync(): void;
}

interface Field {
  name: string;
  dataTypeID: number;
  format: string;
}

/** pg's client reads text values with the parsers `pg.types` holds, or its own overrides. */
type Parsing = ClientBase & { getTypeParser(oid: number, format: string): (text: string) => unknown };

/** Per client, the shape of each statement it has described. */
const shapes = new WeakMap<ClientBase, Map<string, Shape>>();

export function describedOnce<Row>(
  client: ClientBase,
  name: string,
  text: string,
  values: readonly unknown[],
): Promise<{ rows: Row[] }> {
  let known = shapes.get(client);
  if (known === undefined) shapes.set(client, (known = new Map()));
  const kept = known;
  return new Promise((resolve, reject) => {
    const statement = new DescribedOnce<Row>(
      client as Parsing,
      name,
      text,
      values,
      kept.get(name),
      (error, rows, shape) => {
        if (error !== undefined) {
          // Described again next time: whatever failed, nothing kept can outlive it.
          kept.delete(name);
          reject(error);
          return;
        }
        if (shape !== undefined) kept.set(name, shape);
        resolve({ rows });
      },
    );
    client.query(statement as never);
  });
}

/** The submittable: pg's client calls `submit`, then a `handle…` method per message of the answer. */
class DescribedOnce<Row> {
  /** Read by pg's client: it records a named statement as parsed on ParseComplete (or forgets it on an error). */
  readonly name: string;
  readonly text: string;
  private readonly rows: Row[] = [];
  private described: Shape | undefined;
  /** A row that could not be read: reported once the server is done with the statement, as pg does. */
  private unreadable: Error | undefined;
  private settled = false;

  constructor(
    private readonly client: Parsing,
    name: string,
    text: string,
    private readonly values: readonly unknown[],
    private shape: Shape | undefined,
    /** Not `callback`: pg's client would wrap a field of that name. */
    private readonly done: (error: Error | undefined, rows: Row[], described: Shape | undefined) => void,
  ) {
    this.name = name;
    this.text = text;
  }

  submit(connection: Connection): Error | null {
    const parsed = connection.parsedStatements[this.name] ?? connection.submittedNamedStatements[this.name];
    if (parsed !== undefined && parsed !== this.text)
      return new Error(`Prepared statements must be unique - '${this.name}' was used for a different statement`);
    connection.stream.cork?.();
    try {
      if (parsed === undefined) {
        connection.parse({ name: this.name, text: this.text });
        connection.submittedNamedStatements[this.name] = this.text;
      }
      connection.bind({ statement: this.name, values: this.values, valueMapper: prepareValue });
      if (this.shape === undefined) connection.describe({ type: "P", name: "" });
      connection.execute({ portal: "" });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(message: { fields: readonly Field[] }): void {
    this.shape = this.described = {
      names: message.fields.map((field) => field.name),
      parsers: message.fields.map((field) => this.client.getTypeParser(field.dataTypeID, field.format || "text")),
    };
  }

  handleDataRow(message: { fields: readonly (string | null)[] }): void {
    const shape = this.shape;
    if (this.unreadable !== undefined) return;
    if (shape === undefined || message.fields.length !== shape.names.length) {
      this.unreadable = new Error(`statement ${this.name}: a row that its description does not fit`);
      return;
    }
    // Built key by key in the same order every time, so every row shares one hidden class.
    const row: Record<string, unknown> = {};
    const { names, parsers } = shape;
    const texts = message.fields;
    try {
      for (let i = 0; i < names.length; i++) {
        const text = texts[i];
        row[names[i]!] = text === null || text === undefined ? null : parsers[i]!(text);
      }
    } catch (error) {
      this.unreadable = error instanceof Error ? error : new Error(String(error));
      return;
    }
    this.rows.push(row as Row);
  }

  handleCommandComplete(): void {}

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleCopyInResponse(): void {}

  handleCopyData(): void {}

  handleError(error: Error): void {
    this.fail(error);
  }

  handleReadyForQuery(): void {
    if (this.unreadable !== undefined) return this.fail(this.unreadable);
    if (this.settled) return;
    this.settled = true;
    this.done(undefined, this.rows, this.described);
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.done(error, [], undefined);
  }
}
