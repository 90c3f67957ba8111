/**
 * Query-string parameters read the way Plug parses them (pure). The phoenix client encodes its
 * params the Rails/Plug way (`user[id]=1`, `tags[0]=x`), turns a `null` param into an empty segment
 * (`a=1&&vsn=2.0.0`) and percent-encodes values, so this accepts all of that. Later duplicates win,
 * as in Plug. Only the parameters asked for are kept: the socket upgrade reads three.
 *
 *     stringParams("token=abc&&vsn=2.0.0&user[id]=1", new Set(["token", "vsn", "user"]))
 *     // → Map { "token" → "abc", "vsn" → "2.0.0" } (`user` is nested: not a string)
 */

/**
 * The top-level string parameters among `names`, as Plug would parse them (a later duplicate wins;
 * a name last given nested, `token[x]=1`, is not a string), without building the rest of the query.
 */
export function stringParams<N extends string>(query: string, names: ReadonlySet<N>): Map<N, string> {
  const found = new Map<N, string>();
  for (const segment of query.split("&")) {
    if (segment === "") continue;
    const eq = segment.indexOf("=");
    const path = keyPath(decode(eq === -1 ? segment : segment.slice(0, eq)));
    const name = path[0] as N | undefined;
    if (name === undefined || !names.has(name)) continue;
    if (path.length === 1) found.set(name, eq === -1 ? "" : decode(segment.slice(eq + 1)));
    else found.delete(name); // nested from here on, until given plainly again
  }
  return found;
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
