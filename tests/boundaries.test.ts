/**
 * Who may import whom (README "Layout"), checked by reading every import of lib/ and representations/
 * with the TypeScript parser:
 *
 * - Below the web tiers (the contexts: accounts, rooms, presence, pubsub, idempotency, socket-quota,
 *   and the shared modules: db, cluster, telemetry, dashboard, errors, versions, config, …) nothing
 *   imports a web tier (lib/http, lib/realtime, lib/app.ts), not even a type.
 * - The web tiers never import each other. Only the wiring (lib/deps.ts, lib/server.ts, lib/bin/) sees both.
 * - Representations do no I/O: no value import of theirs leads, directly or through the modules it
 *   imports, to the file system, the network, a database or Redis client, or a socket library.
 * - uWebSockets.js is imported (or required) by lib/realtime/transport.ts alone.
 * - OpenTelemetry (`@opentelemetry/*`) is imported by lib/telemetry/tracing.ts alone, not even a type
 *   elsewhere, and tracing.ts is loaded by lib/deps.ts alone (with `import()`, when tracing is on):
 *   with tracing off no OpenTelemetry module is loaded.
 *
 * A failure names the file, what it imports and the rule, e.g.
 * `lib/telemetry/live-stats.ts imports lib/realtime/close-codes.ts: below the web tiers, nothing imports one`.
 */
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Import {
  /** As written: "../db/index.ts", "ioredis", "node:fs". */
  specifier: string;
  /** Repository-relative path for a relative import, else undefined (a package or builtin). */
  file: string | undefined;
  /** `import type …` (or every name imported is a type): nothing is loaded at run time. */
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts"))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

function importsOf(file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), "utf8"), ts.ScriptTarget.Latest, false);
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean) =>
    found.push({
      specifier,
      typeOnly,
      file: specifier.startsWith(".") ? relative(ROOT, resolve(ROOT, dirname(file), specifier)) : undefined,
    });
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const names =
        clause?.namedBindings !== undefined && ts.isNamedImports(clause.namedBindings)
          ? clause.namedBindings.elements
          : undefined;
      const onlyTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined && names !== undefined && names.length > 0 && names.every((n) => n.isTypeOnly)));
      add(node.moduleSpecifier.text, onlyTypes);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const names =
        node.exportClause !== undefined && ts.isNamedExports(node.exportClause)
          ? node.exportClause.elements
          : undefined;
      add(
        node.moduleSpecifier.text,
        node.isTypeOnly || (names !== undefined && names.length > 0 && names.every((n) => n.isTypeOnly)),
      );
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1 && ts.isStringLiteralLike(node.arguments[0]!)) {
      // import("…") and require("…") (createRequire) load at run time.
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === "require"))
        add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const FILES = [...sourceFiles("lib"), ...sourceFiles("representations")];
const IMPORTS = new Map(FILES.map((file) => [file, importsOf(file)]));

type Tier = "http" | "realtime" | "wiring" | "below" | "representations";

function tierOf(file: string): Tier {
  if (file.startsWith("representations/")) return "representations";
  if (file.startsWith("lib/http/") || file === "lib/app.ts") return "http";
  if (file.startsWith("lib/realtime/")) return "realtime";
  if (file === "lib/deps.ts" || file === "lib/server.ts" || file.startsWith("lib/bin/")) return "wiring";
  return "below";
}

/** Modules whose loading means I/O: files, sockets, processes, databases, Redis, servers. */
const IO_MODULES =
  /^(node:)?(fs|fs\/promises|net|tls|dgram|dns|http|https|http2|child_process|cluster|worker_threads|readline)$|^(knex|knex-pglite|pg|ioredis|@electric-sql\/.*|uWebSockets\.js|ws|koa|@koa\/.*|koa-body|rate-limiter-flexible|pino|@opentelemetry\/.*)$/;

function tierViolations(): string[] {
  const problems: string[] = [];
  for (const [file, imports] of IMPORTS) {
    const from = tierOf(file);
    for (const imp of imports) {
      if (imp.file === undefined) continue;
      const to = tierOf(imp.file);
      const web = to === "http" || to === "realtime";
      if ((from === "below" || from === "representations") && web) {
        problems.push(`${file} imports ${imp.file}: below the web tiers, nothing imports one`);
      } else if (web && (from === "http" || from === "realtime") && from !== to) {
        problems.push(
          `${file} imports ${imp.file}: the ${from} tier never imports the ${to} tier (share through a context or lib/deps.ts)`,
        );
      }
    }
  }
  return problems;
}

/** Every module a file loads at run time, following relative value imports; the path that reached each. */
function loadedBy(file: string): Map<string, string[]> {
  const reached = new Map<string, string[]>();
  const queue: Array<{ file: string; path: string[] }> = [{ file, path: [file] }];
  const seen = new Set<string>([file]);
  while (queue.length > 0) {
    const { file: current, path } = queue.shift()!;
    for (const imp of IMPORTS.get(current) ?? importsOf(current)) {
      if (imp.typeOnly) continue;
      if (imp.file === undefined) {
        if (!reached.has(imp.specifier)) reached.set(imp.specifier, path);
      } else if (!seen.has(imp.file)) {
        seen.add(imp.file);
        queue.push({ file: imp.file, path: [...path, imp.file] });
      }
    }
  }
  return reached;
}

function representationViolations(): string[] {
  const problems: string[] = [];
  for (const file of FILES.filter((f) => tierOf(f) === "representations")) {
    for (const [module, path] of loadedBy(file)) {
      if (IO_MODULES.test(module))
        problems.push(`${path.join(" → ")} loads ${module}: representations are pure (no I/O); import types only`);
    }
  }
  return problems;
}

function uwsViolations(): string[] {
  const problems: string[] = [];
  for (const [file, imports] of IMPORTS) {
    if (file === "lib/realtime/transport.ts") continue;
    for (const imp of imports) {
      if (imp.specifier === "uWebSockets.js" || imp.specifier.startsWith("uWebSockets.js/")) {
        problems.push(
          `${file} imports ${imp.specifier}: only lib/realtime/transport.ts may (every uWebSockets.js quirk lives there)`,
        );
      }
    }
  }
  return problems;
}

function otelViolations(): string[] {
  const problems: string[] = [];
  for (const [file, imports] of IMPORTS) {
    for (const imp of imports) {
      if (imp.specifier.startsWith("@opentelemetry/") && file !== "lib/telemetry/tracing.ts")
        problems.push(
          `${file} imports ${imp.specifier}: only lib/telemetry/tracing.ts may (loaded only when tracing is on)`,
        );
      if (imp.file === "lib/telemetry/tracing.ts" && !imp.typeOnly && file !== "lib/deps.ts")
        problems.push(`${file} loads lib/telemetry/tracing.ts: only lib/deps.ts may, and only when tracing is on`);
    }
  }
  return problems;
}

test("the walk sees the code: every tier has files, and transport.ts's uWebSockets.js import is found", (t) => {
  const tiers = new Set(FILES.map(tierOf));
  t.deepEqual([...tiers].sort(), ["below", "http", "realtime", "representations", "wiring"]);
  t.true(
    IMPORTS.get("lib/realtime/transport.ts")!.some((imp) => imp.specifier === "uWebSockets.js" && !imp.typeOnly),
    "the require() is seen",
  );
  t.true(
    IMPORTS.get("lib/deps.ts")!.some((imp) => imp.file === "lib/telemetry/tracing.ts" && !imp.typeOnly),
    "the dynamic import() is seen",
  );
  t.true(
    IMPORTS.get("representations/users.ts")!.some((imp) => imp.file === "lib/accounts/index.ts" && imp.typeOnly),
    "import type is told apart",
  );
});

test("no context or shared module imports a web tier, and the web tiers never import each other", (t) => {
  t.deepEqual(tierViolations(), []);
});

test("representations do no I/O: none of their value imports leads to a file, network, database or Redis module", (t) => {
  t.deepEqual(representationViolations(), []);
});

test("uWebSockets.js is imported by lib/realtime/transport.ts alone", (t) => {
  t.deepEqual(uwsViolations(), []);
});

test("@opentelemetry/* is imported by lib/telemetry/tracing.ts alone, and tracing.ts is loaded by lib/deps.ts alone", (t) => {
  t.true(
    IMPORTS.get("lib/telemetry/tracing.ts")!.some((imp) => imp.specifier === "@opentelemetry/api" && !imp.typeOnly),
    "tracing.ts's own imports are seen",
  );
  t.deepEqual(otelViolations(), []);
});
