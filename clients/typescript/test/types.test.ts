/** src/commands.ts is what `npm run generate` makes of the committed schema today. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

import { compileFromFile } from "json-schema-to-typescript";

import { DEFAULT_SCHEMA_PATH } from "../src/paths.js";

const GENERATED = fileURLToPath(new URL("../../src/commands.ts", import.meta.url));
// Must match the --bannerComment of the `generate` script in package.json.
const BANNER =
  "/* Generated from schemas/json/commands.schema.json by npm run generate: do not edit. */";

it("the command types are generated from the current schema (else: npm run generate)", async () => {
  const fresh = await compileFromFile(DEFAULT_SCHEMA_PATH, { bannerComment: BANNER });
  assert.equal(readFileSync(GENERATED, "utf-8"), fresh);
});
