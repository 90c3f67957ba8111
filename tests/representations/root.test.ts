import test from "ava";
import { API_VERSIONS } from "../../lib/versions.ts";
import { rootView } from "../../representations/root.ts";
import { assertLinks } from "../helpers/api.ts";

const entry = { socketUrl: "ws://127.0.0.1:4001/socket" };

for (const version of API_VERSIONS) {
  test(`rootView v${version}`, (t) => {
    const plain = rootView[version](entry, { version, basePath: "" });
    const prefixed = rootView[version](entry, { version, basePath: `/v${version}` });
    t.snapshot(plain, "unprefixed");
    t.snapshot(prefixed, "under the URL prefix");
    assertLinks(t, plain, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
    const links = plain["_links"] as Record<string, { href: string; templated?: boolean }>;
    for (const rel of ["users", "user", "sessions", "rooms", "room", "socket"]) t.truthy(links[rel], `links to ${rel}`);
    t.true(links["user"]?.templated);
    t.true(links["room"]?.templated);
    t.is(links["users"]?.templated, undefined);
    t.is(links["socket"]?.href, entry.socketUrl);
  });
}
