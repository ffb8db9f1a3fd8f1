/**
 * Where the pipeline's shared files live. They are read from the repository at run
 * time, never copied: `worker/delivery/pipeline.lua` is the one enqueue path every producer
 * runs, `worker/delivery/protocol.json` names its arguments, and
 * `schemas/json/commands.schema.json` is the one command contract.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// This file compiles to <package>/dist/src/paths.js; the repository root is two
// levels above the package (clients/typescript).
const REPOSITORY_ROOT = new URL("../../../../", import.meta.url);

export const DEFAULT_SCRIPT_PATH = fileURLToPath(new URL("worker/delivery/pipeline.lua", REPOSITORY_ROOT));
export const DEFAULT_PROTOCOL_PATH = fileURLToPath(
  new URL("worker/delivery/protocol.json", REPOSITORY_ROOT),
);
export const DEFAULT_SCHEMA_PATH = fileURLToPath(
  new URL("schemas/json/commands.schema.json", REPOSITORY_ROOT),
);

export function readText(path: string): string {
  return readFileSync(path, "utf-8");
}
