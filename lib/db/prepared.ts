/**
 * Named statements: a query that every request sends is parsed and planned by PostgreSQL once per
 * connection, then only bound and executed (pg's named prepared statements, through knex's
 * `.options()`), as Ecto does for every query. What is cached is the plan, never a result: every
 * execution reads the tables as they are. PGlite ignores the name.
 *
 *     db("users").where({ id }).first().options(prepared("accounts.user"))
 *
 * A name must stand for one SQL text: pg refuses the same name with a different text on a
 * connection. So only queries whose text never varies (no lists of varying length) get one.
 */
export function prepared(name: string): { name: string } {
  return { name: `hypercast.${name}` };
}
