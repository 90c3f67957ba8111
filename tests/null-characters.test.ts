import test from "ava";
import { findNullCharacters } from "../lib/null-characters.ts";

const DETAIL = "must not contain U+0000 (the NUL character)";

test("input without U+0000 has nothing to report, however it nests", (t) => {
  t.deepEqual(findNullCharacters({ name: "a", tags: ["x", { deep: [1, null, true, "y"] }] }), []);
  t.deepEqual(findNullCharacters("plain"), []);
  t.deepEqual(findNullCharacters(null), []);
  t.deepEqual(findNullCharacters([]), []);
});

test("every U+0000 is reported with its JSON Pointer: values, array items and property names", (t) => {
  const value = {
    name: "a\u0000b",
    "a/b~c": { list: ["ok", "x\u0000"] },
    "key\u0000": "fine",
  };
  t.deepEqual(findNullCharacters(value), [
    { pointer: "/name", detail: DETAIL },
    { pointer: "/a~1b~0c/list/1", detail: DETAIL },
    { pointer: "/key\u0000", detail: `property name ${DETAIL}` },
  ]);
  t.deepEqual(findNullCharacters("\u0000"), [{ pointer: "", detail: DETAIL }]);
});

test("properties inherited from a prototype are not the input's own and are not read", (t) => {
  const inherited = Object.create({ name: "a\u0000" }) as Record<string, unknown>;
  inherited["own"] = "ok";
  t.deepEqual(findNullCharacters(inherited), []);
});
