/**
 * `hypercast-load <scenario> [options]` (and `npm run load -- …`): parses the options, runs the
 * load (./coordinator.ts; it mints a socket token first when --api is given), shows progress and the
 * summary, writes --out and --report, and exits 0 for a valid run, 1 for a run that must not be
 * trusted (its reasons printed), 2 for a usage or preflight error. Bounded: the coordinator stops by
 * itself at --max-seconds, and a second timer here kills everything shortly after.
 */
import { writeFile } from "node:fs/promises";
import { PreflightError, runLoad } from "./coordinator.ts";
import { parseOptions, USAGE, type LoadOptions } from "./options.ts";
import { writeReport } from "./report.ts";
import { progressLine, summaryTable } from "./summary.ts";

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let options: LoadOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const bound = setTimeout(
    () => {
      console.error(`hypercast-load: still running ${options.maxSeconds + 30} s after start; giving up`);
      process.exit(1);
    },
    (options.maxSeconds + 30) * 1000,
  );
  bound.unref();
  const tty = process.stdout.isTTY === true;
  let result;
  try {
    result = await runLoad(options, {
      onProgress(point, totals, phase) {
        if (options.quiet) return;
        const line = progressLine(point, totals, phase);
        if (tty) process.stdout.write(`\r\x1b[K${line}`);
        else if (Math.round(point.t) % 2 === 0) console.log(line);
      },
    });
  } catch (error) {
    if (error instanceof PreflightError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  if (tty && !options.quiet) process.stdout.write("\n");
  console.log(`\n${summaryTable(result)}`);
  if (options.out !== undefined) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  if (options.report !== undefined) await writeReport(options.report, result);
  if (!result.valid) console.error(`\nthis run is NOT valid: ${result.invalid_reasons.join("; ")}`);
  return result.valid ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  return 2;
});
