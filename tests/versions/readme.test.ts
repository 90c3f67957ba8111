/**
 * The README's version table is the changelog declared in lib/versions.ts, rendered: this test
 * renders it and compares. When it fails, it prints the table to paste between the markers.
 */
import { readFileSync } from "node:fs";
import test from "ava";
import { loadConfig } from "../../lib/config.ts";

const START = "<!-- version-table: generated from lib/versions.ts; tests/versions/readme.test.ts checks it -->";
const END = "<!-- /version-table -->";

/** The table, from the version policy of the default configuration (the declaration and the default V1_SUNSET). */
function versionTable(): string {
  const rows = loadConfig({ SECRET_KEY_BASE: "x".repeat(48) }).versions.all.map(
    ({ version, status, deprecatedAt, sunset, changes }) => {
      const changed = changes.map((c) => `**${c.resource}**: ${c.description}`).join("<br>");
      return `| ${version} | ${status} | ${deprecatedAt?.toISOString().slice(0, 10) ?? "–"} | ${sunset === undefined ? "–" : `${sunset.toISOString().slice(0, 10)} (\`V${version}_SUNSET\`)`} | ${changed} |`;
    },
  );
  return [
    "| version | status | deprecated | sunset (default) | changes from the previous version |",
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

test("the README's version table is the declaration in lib/versions.ts", (t) => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  t.true(start !== -1 && end > start, "the README keeps the version-table markers");
  const expected = versionTable();
  const actual = readme.slice(start + START.length, end).trim();
  if (actual !== expected) t.log(`paste between the markers:\n${expected}`);
  t.is(actual, expected);
});
