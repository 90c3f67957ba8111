import test from "ava";
import type { User } from "../../lib/accounts/index.ts";
import { API_VERSIONS } from "../../lib/versions.ts";
import { userParams, userView } from "../../representations/users.ts";
import { assertLinks } from "../helpers/api.ts";

const ada: User = {
  id: 7,
  name: "Ada",
  email: "ada@example.com",
  favoriteSports: ["Soccer", "Tennis", "Chess"],
  apiVersion: 1,
  insertedAt: new Date("2026-01-02T03:04:05.678Z"),
  updatedAt: new Date("2026-02-03T04:05:06.789Z"),
};

for (const version of API_VERSIONS) {
  test(`userView v${version}`, (t) => {
    const own = userView[version](ada, { version, basePath: "", viewerId: ada.id });
    t.snapshot(own, "as the user themself sees it");
    const prefixed = userView[version](ada, { version, basePath: `/v${version}`, viewerId: 8 });
    t.snapshot(prefixed, "as another user sees it, under the URL prefix");
    assertLinks(t, own, { version, prefix: "", label: "" });
    assertLinks(t, prefixed, { version, prefix: `/v${version}`, label: "" });
  });

  test(`userView v${version} shows email only to the user themself`, (t) => {
    t.is(userView[version](ada, { version, basePath: "", viewerId: ada.id })["email"], "ada@example.com");
    t.false("email" in userView[version](ada, { version, basePath: "", viewerId: 8 }));
    t.false("email" in userView[version](ada, { version, basePath: "" }), "nor to an anonymous viewer");
  });
}

test("userView v2 shows the pinned api_version to its owner only; v1 never", (t) => {
  t.is(userView[2](ada, { version: 2, basePath: "", viewerId: ada.id })["api_version"], 1);
  t.false("api_version" in userView[2](ada, { version: 2, basePath: "", viewerId: 8 }));
  t.false("api_version" in userView[2](ada, { version: 2, basePath: "" }), "nor to an anonymous viewer");
  t.false("api_version" in userView[1](ada, { version: 1, basePath: "", viewerId: ada.id }), "v1's shape is fixed");
});

test("userParams v2: api_version changes the pin; absent leaves it", (t) => {
  t.is(userParams[2].update({ api_version: 1 }).apiVersion, 1);
  t.is(userParams[2].update({ name: "Grace" }).apiVersion, undefined);
});

test("userView v1 shows the first favourite sport, or null; v2 the whole list", (t) => {
  const ctx1 = { version: 1, basePath: "" } as const;
  const ctx2 = { version: 2, basePath: "" } as const;
  t.is(userView[1](ada, ctx1)["favorite_sport"], "Soccer");
  t.is(userView[1]({ ...ada, favoriteSports: [] }, ctx1)["favorite_sport"], null);
  t.false("favorite_sports" in userView[1](ada, ctx1));
  t.deepEqual(userView[2](ada, ctx2)["favorite_sports"], ["Soccer", "Tennis", "Chess"]);
  t.deepEqual(userView[2]({ ...ada, favoriteSports: [] }, ctx2)["favorite_sports"], []);
  t.false("favorite_sport" in userView[2](ada, ctx2));
});

const credentials = { name: "Ada", email: "ada@example.com", password: "correct horse" };

test("userParams v1: favorite_sport becomes a one-element list on create", (t) => {
  t.deepEqual(userParams[1].create({ ...credentials, favorite_sport: "Chess" }), {
    ...credentials,
    favoriteSports: ["Chess"],
  });
  t.deepEqual(userParams[1].create({ ...credentials, favorite_sport: null }), { ...credentials, favoriteSports: [] });
  t.deepEqual(userParams[1].create(credentials), { ...credentials, favoriteSports: [] });
});

test("userParams v1: an update edits only the first sport, never the whole list", (t) => {
  const rugby = userParams[1].update({ favorite_sport: "Rugby" });
  t.is(rugby.firstFavoriteSport, "Rugby");
  t.false("favoriteSports" in rugby, "a v1 write never replaces the whole list");
  t.is(userParams[1].update({ favorite_sport: null }).firstFavoriteSport, null);
  const renamed = userParams[1].update({ name: "Grace" });
  t.is(renamed.name, "Grace");
  t.is(renamed.firstFavoriteSport, undefined, "absent means unchanged, unlike null");
  t.false("favoriteSports" in renamed);
});

test("userParams v2: favorite_sports is the list, on create and on update", (t) => {
  t.deepEqual(userParams[2].create({ ...credentials, favorite_sports: ["Go", "Chess"] }), {
    ...credentials,
    favoriteSports: ["Go", "Chess"],
  });
  t.is(userParams[2].create(credentials).favoriteSports, undefined);
  const replaced = userParams[2].update({ favorite_sports: [] });
  t.deepEqual(replaced.favoriteSports, []);
  t.false("firstFavoriteSport" in replaced);
  t.is(userParams[2].update({ name: "Grace" }).favoriteSports, undefined);
});
