#!/usr/bin/env node
// The `hypercast-load` command: loads tsx (the project runs TypeScript directly) and runs ./cli.ts.
import { register } from "tsx/esm/api";

register();
await import("./cli.ts");
