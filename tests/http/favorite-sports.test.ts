/**
 * One stored list of favourite sports, two views of it. A v1 client sees and edits
 * only the first element; a v1 write never erases what a v2 client saved.
 */
import test from "ava";
import { call, MODES, type Mode } from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

let app: TestServer;
test.before(async () => {
  app = await startTestServer();
});
test.after.always(async () => {
  await app?.stop();
});

const V1_MODES = MODES.filter((m) => m.version === 1);
const V2_MODES = MODES.filter((m) => m.version === 2);

for (const [i, v1] of V1_MODES.entries()) {
  const v2 = V2_MODES[i]!;

  test(`the v1/v2 round trip of favourite sports (${v1.label}, ${v2.label})`, async (t) => {
    const user = await app.signUp("Sporty");
    const asV1 = (method: string, json?: unknown) =>
      call(app, v1, method, `/users/${user.id}`, { token: user.token, ...(json === undefined ? {} : { json }) });
    const asV2 = (method: string, json?: unknown) =>
      call(app, v2, method, `/users/${user.id}`, { token: user.token, ...(json === undefined ? {} : { json }) });
    const v2List = async () => (await asV2("GET")).body.favorite_sports as string[];

    // A v2 client saves a list.
    const saved = await asV2("PATCH", { favorite_sports: ["Soccer", "Tennis", "Chess"] });
    t.is(saved.status, 200);
    t.deepEqual(saved.body.favorite_sports, ["Soccer", "Tennis", "Chess"]);

    // v1 shows the first one, and no list.
    const shown = await asV1("GET");
    t.is(shown.body.favorite_sport, "Soccer");
    t.false("favorite_sports" in shown.body);
    t.false("favorite_sport" in (await asV2("GET")).body);

    // v1 replaces only the first one.
    const rugby = await asV1("PATCH", { favorite_sport: "Rugby" });
    t.is(rugby.status, 200);
    t.is(rugby.body.favorite_sport, "Rugby");
    t.deepEqual(await v2List(), ["Rugby", "Tennis", "Chess"]);

    // v1 null removes only the first one.
    const cleared = await asV1("PATCH", { favorite_sport: null });
    t.is(cleared.status, 200);
    t.is(cleared.body.favorite_sport, "Tennis", "v1 now sees the next one");
    t.deepEqual(await v2List(), ["Tennis", "Chess"]);

    // A v1 change of only the name leaves the list alone.
    const renamed = await asV1("PATCH", { name: "Renamed" });
    t.is(renamed.status, 200);
    t.is(renamed.body.name, "Renamed");
    t.is(renamed.body.favorite_sport, "Tennis");
    t.deepEqual(await v2List(), ["Tennis", "Chess"]);

    // v2 replaces the whole list.
    const replaced = await asV2("PATCH", { favorite_sports: ["Golf"] });
    t.deepEqual(replaced.body.favorite_sports, ["Golf"]);
    t.is((await asV1("GET")).body.favorite_sport, "Golf");

    // An empty list reads as null in v1.
    const emptied = await asV2("PATCH", { favorite_sports: [] });
    t.deepEqual(emptied.body.favorite_sports, []);
    t.is((await asV1("GET")).body.favorite_sport, null);
  });

  test(`v1 on an empty list: null keeps it empty, a sport starts it (${v1.label})`, async (t) => {
    const user = await app.signUp("Empty");
    const patch = (json: unknown) => call(app, v1, "PATCH", `/users/${user.id}`, { token: user.token, json });
    t.is((await patch({ favorite_sport: null })).body.favorite_sport, null);
    t.deepEqual((await app.deps.accounts.getUser(user.id)).favoriteSports, []);
    t.is((await patch({ favorite_sport: "Chess" })).body.favorite_sport, "Chess");
    t.deepEqual((await app.deps.accounts.getUser(user.id)).favoriteSports, ["Chess"]);
  });

  test(`v1 create with favorite_sport stores a one-element list (${v1.label})`, async (t) => {
    const email = `v1-create-${i}@sports.example.com`;
    const res = await call(app, v1, "POST", "/users", {
      json: { name: "One", email, password: "correct horse", favorite_sport: "Chess" },
    });
    t.is(res.status, 201);
    t.is(res.body.favorite_sport, "Chess");
    t.deepEqual((await app.deps.accounts.getUser(res.body.id)).favoriteSports, ["Chess"]);

    const without = await call(app, v1, "POST", "/users", {
      json: { name: "None", email: `none-${email}`, password: "correct horse" },
    });
    t.is(without.body.favorite_sport, null);
    const explicitNull = await call(app, v1, "POST", "/users", {
      json: { name: "Null", email: `null-${email}`, password: "correct horse", favorite_sport: null },
    });
    t.is(explicitNull.body.favorite_sport, null);
    t.deepEqual((await app.deps.accounts.getUser(explicitNull.body.id)).favoriteSports, []);
  });

  test(`each version accepts only its own sports field (${v1.label}, ${v2.label})`, async (t) => {
    const user = await app.signUp("Strict", { favorite_sports: ["Chess", "Go"] });
    const patch = (mode: Mode, json: unknown) =>
      call(app, mode, "PATCH", `/users/${user.id}`, { token: user.token, json });
    t.is((await patch(v1, { favorite_sports: ["Golf"] })).status, 422);
    t.is((await patch(v2, { favorite_sport: "Golf" })).status, 422);
    t.is((await patch(v1, { favorite_sport: "" })).status, 422);
    t.is((await patch(v2, { favorite_sports: [""] })).status, 422);
    t.is((await patch(v2, { favorite_sports: "Golf" })).status, 422);
    t.is((await patch(v1, {})).status, 422, "an empty change says nothing");
    t.deepEqual((await app.deps.accounts.getUser(user.id)).favoriteSports, ["Chess", "Go"], "nothing changed");
  });
}

test("v2 create with favorite_sports stores the list; without it, an empty list", async (t) => {
  const res = await app.request("POST", "/users", {
    json: {
      name: "Many",
      email: "many@sports.example.com",
      password: "correct horse",
      favorite_sports: ["Soccer", "Tennis", "Chess"],
    },
  });
  t.is(res.status, 201);
  t.deepEqual(res.body.favorite_sports, ["Soccer", "Tennis", "Chess"]);
  const none = await app.request("POST", "/users", {
    json: { name: "None", email: "none-v2@sports.example.com", password: "correct horse" },
  });
  t.deepEqual(none.body.favorite_sports, []);
});
