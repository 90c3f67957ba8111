/**
 * Adding a version is a compile-time checklist (README "Adding a version"). The first test runs
 * the TypeScript compiler over the real code with `3` added to `API_VERSIONS` (lib/versions.ts
 * changed in memory only) and checks that it demands exactly what the README says: a changelog
 * entry, and a renderer (or request params) in every registry under representations/. The rest
 * check what the compiler cannot see: a JSON Schema per request body per version, and the enum of
 * pinnable versions.
 */
import { readdirSync, readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import ts from "typescript";
import { API_VERSIONS } from "../../lib/versions.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const VERSIONS_FILE = resolve(ROOT, "lib/versions.ts");
const DECLARED = "export const API_VERSIONS = [2, 1] as const;";

/** Each `satisfies Record<ApiVersion, …>` / `satisfies Renderers<…>` that must grow a `3` entry. */
const DEMANDED = [
  "lib/versions.ts VERSIONS (the changelog entry)",
  "representations/messages.ts messageView",
  "representations/presence.ts presenceView",
  "representations/rooms.ts membershipView",
  "representations/rooms.ts roomView",
  "representations/root.ts rootView",
  "representations/sessions.ts credentialsView",
  "representations/users.ts userParams",
  "representations/users.ts userView",
];

test("with 3 added to API_VERSIONS, the compiler demands a changelog entry and every renderer and params registry for it", (t) => {
  const source = readFileSync(VERSIONS_FILE, "utf8");
  t.true(source.includes(DECLARED), "the fixture edits this exact line: update the test if it moved");
  const configFile = ts.findConfigFile(ROOT, ts.sys.fileExists, "tsconfig.json")!;
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configFile, ts.sys.readFile).config, ts.sys, ROOT);
  const host = ts.createCompilerHost(parsed.options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, language, onError, create) =>
    resolve(fileName) === VERSIONS_FILE
      ? ts.createSourceFile(
          fileName,
          source.replace(DECLARED, "export const API_VERSIONS = [3, 2, 1] as const;"),
          language,
        )
      : read(fileName, language, onError, create);
  // The application only (tests and benchmarks index registries too, which adds noise, not proof).
  const roots = parsed.fileNames.filter((f) => /^(lib|representations)\//.test(relative(ROOT, f)));
  const program = ts.createProgram({ rootNames: roots, options: parsed.options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program);

  const unsatisfied = diagnostics
    .filter(
      (d) =>
        d.code === 1360 && ts.flattenDiagnosticMessageText(d.messageText, "\n").includes("Property '3' is missing"),
    )
    .map((d) => `${relative(ROOT, d.file!.fileName)} ${declarationAt(d)}`)
    .sort();
  t.deepEqual(unsatisfied, DEMANDED.map((line) => line.replace(/ \(.*\)$/, "")).sort());
  t.true(diagnostics.length >= DEMANDED.length, "and the build fails");

  // Unchanged, the same program compiles cleanly: the errors above come from the new version alone.
  const clean = ts.createProgram({ rootNames: roots, options: parsed.options, oldProgram: program });
  t.deepEqual(
    ts.getPreEmitDiagnostics(clean).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    [],
  );
});

/** The name of the `const` whose initializer holds the diagnostic. */
function declarationAt(diagnostic: ts.Diagnostic): string {
  const file = diagnostic.file!;
  let found = "?";
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && node.getStart(file) <= diagnostic.start! && diagnostic.start! < node.getEnd())
      found = node.name.getText(file);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

test("every version has a JSON Schema for every request body the other versions have", (t) => {
  const names = (v: number) =>
    readdirSync(new URL(`../../schemas/v${v}/`, import.meta.url))
      .filter((f) => f.endsWith(".json"))
      .sort();
  const expected = names(API_VERSIONS[0]);
  t.true(expected.length > 0);
  for (const version of API_VERSIONS) t.deepEqual(names(version), expected, `schemas/v${version}/`);
});

test("the pinnable versions in schemas/v2/users.update.json are exactly API_VERSIONS", (t) => {
  const schema = JSON.parse(readFileSync(new URL("../../schemas/v2/users.update.json", import.meta.url), "utf8")) as {
    properties: { api_version: { enum: number[] } };
  };
  t.deepEqual([...schema.properties.api_version.enum].sort(), [...API_VERSIONS].sort());
});
