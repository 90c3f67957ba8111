/**
 * A Plug-style query-string parser (pure). The phoenix client encodes its params the Rails/Plug
 * way (`user[id]=1`, `tags[0]=x`), turns a `null` param into an empty segment (`a=1&&vsn=2.0.0`)
 * and percent-encodes values, so this accepts all of that. Later duplicates win, as in Plug.
 *
 *     parseQuery("token=abc&&vsn=2.0.0&user[id]=1")
 *     // → { token: "abc", vsn: "2.0.0", user: { id: "1" } }
 */

export type QueryValue = string | QueryObject;
export interface QueryObject {
  [key: string]: QueryValue;
}

export function parseQuery(query: string): QueryObject {
  const result: QueryObject = Object.create(null) as QueryObject;
  for (const segment of query.split("&")) {
    if (segment === "") continue;
    const eq = segment.indexOf("=");
    const rawKey = eq === -1 ? segment : segment.slice(0, eq);
    const value = eq === -1 ? "" : decode(segment.slice(eq + 1));
    const path = keyPath(decode(rawKey));
    if (path.length === 0) continue;
    assign(result, path, value);
  }
  return result;
}

/** A top-level string parameter, or undefined when it is absent or nested. */
export function stringParam(query: QueryObject, name: string): string | undefined {
  const value = query[name];
  return typeof value === "string" ? value : undefined;
}

function decode(text: string): string {
  // Most parameters (a token, `vsn`) hold nothing to decode.
  if (!text.includes("%") && !text.includes("+")) return text;
  const plus = text.replace(/\+/g, " ");
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus; // a stray "%" stays literal rather than failing the whole query
  }
}

/** `a[b][c]` → ["a", "b", "c"]; `tags[]` → ["tags", ""]; anything unbalanced is a plain key. */
function keyPath(key: string): string[] {
  const open = key.indexOf("[");
  if (open <= 0) return key === "" ? [] : [key];
  const rest = key.slice(open);
  if (!/^(\[[^[\]]*\])+$/.test(rest)) return [key];
  const parts = [key.slice(0, open)];
  for (const match of rest.matchAll(/\[([^[\]]*)\]/g)) parts.push(match[1] ?? "");
  return parts;
}

function assign(target: QueryObject, path: string[], value: string): void {
  let node = target;
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i]!;
    const next = node[part];
    if (typeof next === "object") {
      node = next;
    } else {
      const child = Object.create(null) as QueryObject;
      node[part] = child;
      node = child;
    }
  }
  const last = path[path.length - 1]!;
  // `tags[]=a&tags[]=b`: Plug builds a list; an object keyed by position keeps the values.
  node[last === "" ? String(Object.keys(node).length) : last] = value;
}
