/**
 * lib/schemas.ts: one loader and one field-error translator for request bodies (HTTP), channel
 * payloads (sockets) and the representations OpenAPI reads. Both tiers get the same
 * `{pointer, detail}` errors for the same kind of violation.
 */
import test from "ava";
import { compileChannelSchemas, compileRequestSchemas, readSchema, responseSchemaPath } from "../lib/schemas.ts";

const bodies = compileRequestSchemas(["users.create", "messages.create"]);
const payloads = compileChannelSchemas();

test("a request body is checked against its version's schema; every violation is a pointer and a detail", (t) => {
  t.deepEqual(
    bodies.validate(2, "users.create", { name: "Ada", email: "ada@example.com", password: "correct horse" }),
    [],
  );
  t.deepEqual(
    bodies
      .validate(2, "users.create", { name: "", email: "not an address", password: "correct horse", "a/b~c": 1 })
      .sort((a, b) => a.pointer.localeCompare(b.pointer)),
    [
      { pointer: "/a~1b~0c", detail: "is not a known property" },
      { pointer: "/email", detail: 'must match format "email"' },
      { pointer: "/name", detail: "must NOT have fewer than 1 characters" },
    ],
  );
  t.deepEqual(bodies.validate(1, "users.create", { name: "Ada", email: "ada@example.com" }), [
    { pointer: "/password", detail: "is required" },
  ]);
});

test("a channel payload gets the same errors for the same violations", (t) => {
  t.deepEqual(payloads.validate("message-new", { body: "hi" }), []);
  t.deepEqual(payloads.validate("message-new", {}), [{ pointer: "/body", detail: "is required" }]);
  t.deepEqual(payloads.validate("message-new", { body: "hi", "a/b~c": 1 }), [
    { pointer: "/a~1b~0c", detail: "is not a known property" },
  ]);
  t.deepEqual(payloads.validate("message-new", { body: "" }), bodies.validate(2, "messages.create", { body: "" }));
});

test("U+0000 is refused with its pointer by both, before the schema", (t) => {
  const nul = [{ pointer: "/body", detail: "must not contain U+0000 (the NUL character)" }];
  t.deepEqual(payloads.validate("message-new", { body: "a\u0000b" }), nul);
  t.deepEqual(bodies.validate(2, "messages.create", { body: "a\u0000b" }), nul);
});

test("a schema that is missing stops the boot naming the file; a name not compiled is a programming error", (t) => {
  t.throws(() => compileRequestSchemas(["users.nothing"]), {
    message: /^schema v2\/users\.nothing cannot be loaded from .*schemas\/v2\/users\.nothing\.json/,
  });
  t.throws(() => bodies.validate(2, "rooms.create", {}), { message: "schema rooms.create was not compiled at boot" });
  t.throws(() => payloads.validate("nothing", {}), {
    message: /^no channel schema "nothing" in .*schemas\/channels\/ \(have: .*message-new/,
  });
});

test("a representation's schema is the version's own when it has one, else the shared one", (t) => {
  t.is(responseSchemaPath(1, "user"), "responses/v1/user");
  t.is(responseSchemaPath(2, "room"), "responses/room");
  t.is(readSchema(responseSchemaPath(2, "room"))["type"], "object");
});
