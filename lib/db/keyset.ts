/**
 * Keyset pagination over one unique integer column. A page is read forward (in the list's own
 * order, after `from`) or backward (before `from`), one row more than asked so we know whether
 * more rows lie in that direction. Rows always come back in the list's own order.
 *
 *     const { rows, more } = await keysetPage(db("users"), "id", "asc", { direction: "forward", limit: 20 })
 */
import type { Knex } from "knex";

export interface PageRequest {
  direction: "forward" | "backward";
  /** The key of the row the page starts after (forward) or ends before (backward). */
  from?: number | undefined;
  limit: number;
}

export interface PageResult<T> {
  rows: T[];
  /** Whether more rows lie beyond this page in the requested direction. */
  more: boolean;
}

export async function keysetPage<T>(
  query: Knex.QueryBuilder,
  column: string,
  order: "asc" | "desc",
  page: PageRequest,
): Promise<PageResult<T>> {
  const forward = page.direction === "forward";
  // Reading backward means walking the list in the opposite order, then flipping the rows.
  const walk = forward ? order : order === "asc" ? "desc" : "asc";
  if (page.from !== undefined) query.andWhere(column, walk === "asc" ? ">" : "<", page.from);
  const rows = (await query.orderBy(column, walk).limit(page.limit + 1)) as T[];
  const more = rows.length > page.limit;
  if (more) rows.pop();
  if (!forward) rows.reverse();
  return { rows, more };
}
