/**
 * Validation of commands against the committed JSON Schema (draft 2020-12), before
 * anything is sent. The schema is generated from the pydantic models the workers
 * validate with, so a command this accepts is one the workers accept (except the
 * cart limit, which no schema expresses: a worker rejects that as validation_error).
 * Numbers the seed's side cannot read back, which the open attributes' schema lets
 * through, are refused before that, by the workers' rule (`./numbers.ts`).
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";

import { closest } from "./closest.js";
import type { CheckoutCommand } from "./commands.js";
import { unsafeNumbers } from "./numbers.js";
import { DEFAULT_SCHEMA_PATH, readText } from "./paths.js";

// As many problems as the Python producer names in one message.
const PROBLEM_LIMIT = 5;

/** A command that does not validate; nothing was enqueued for it (or its batch). */
export class InvalidCommand extends Error {
  override name = "InvalidCommand";

  constructor(
    message: string,
    /** The first field that is wrong, dotted (`updates.line_items.0.total_amount`). */
    readonly field: string,
    /** The command's position in `enqueueMany`'s input, if it came from there. */
    readonly position?: number,
  ) {
    super(position === undefined ? message : `command ${position}: ${message}`);
  }

  at(position: number): InvalidCommand {
    return new InvalidCommand(this.message, this.field, position);
  }
}

/** A validated command and the exact JSON text that will be enqueued for it. */
export interface Prepared {
  command: CheckoutCommand;
  text: string;
}

type SchemaDocument = {
  $id: string;
  $defs: Record<string, { properties?: { type?: { const?: string } } }>;
  oneOf: { $ref: string }[];
};

/**
 * Run ids as `schemas/ids.py` defines them: no `:`, so `rk2:ex` cannot write into run
 * rk2's keys, and nothing a terminal or a log line would take for a control.
 */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A run id the Python producers would refuse; nothing is sent under it. */
export class InvalidRunId extends RangeError {
  override name = "InvalidRunId";
}

/** Throws InvalidRunId, in the words of the Python producers, unless `runId` is valid. */
export function checkRunId(runId: string): void {
  if (RUN_ID.test(runId)) return;
  throw new InvalidRunId(
    `run id ${JSON.stringify(runId)}: 1-128 characters, a letter or digit first, then ` +
      "letters, digits, '_', '.' or '-'",
  );
}

/** The default of CHECKOUT_MAX_COMMAND_BYTES (protocol.json limits.max_command_bytes). */
export const MAX_COMMAND_BYTES = 256 * 1024;

export class CommandValidator {
  private readonly byType = new Map<string, ValidateFunction>();
  private readonly maxBytes: number;

  constructor(
    schemaPath: string = DEFAULT_SCHEMA_PATH,
    maxBytes: number = Number(process.env.CHECKOUT_MAX_COMMAND_BYTES ?? MAX_COMMAND_BYTES),
  ) {
    this.maxBytes = maxBytes;
    const schema = JSON.parse(readText(schemaPath)) as SchemaDocument;
    // verbose: an error carries the schema it broke, so an unknown field can be matched
    // against the properties beside it (`messageOf`).
    const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
    ajv.addSchema(schema);
    // Pick the branch by `type` (the schema's discriminator), so errors name the
    // wrong field of that command instead of every branch's complaints.
    for (const { $ref } of schema.oneOf) {
      const name = $ref.replace("#/$defs/", "");
      const type = schema.$defs[name]?.properties?.type?.const;
      const validate = ajv.getSchema(`${schema.$id}${$ref}`);
      if (!type || !validate) throw new Error(`commands schema: cannot use branch ${$ref}`);
      this.byType.set(type, validate);
    }
  }

  /**
   * Validate `command` as it will travel: its JSON text, parsed back (so `undefined`
   * or a `Date` are judged as what JSON.stringify makes of them). Numbers are judged
   * before that: JSON.stringify writes NaN and Infinity as null, and throws on a BigInt.
   */
  prepare(command: unknown): Prepared {
    const unsafe = unsafeNumbers(command);
    if (unsafe.length > 0) {
      throw refusal(new Map(unsafe.map(({ field, message }) => [field, `${field}: ${message}`])));
    }
    const text = JSON.stringify(command);
    if (text === undefined || !text.startsWith("{")) {
      throw new InvalidCommand("command: must be a JSON object", "command");
    }
    const size = Buffer.byteLength(text, "utf8");
    if (size > this.maxBytes) {
      throw new InvalidCommand(
        `command: ${size} bytes of JSON, more than CHECKOUT_MAX_COMMAND_BYTES (${this.maxBytes})`,
        "command",
      );
    }
    const value = JSON.parse(text) as Record<string, unknown>;
    const validate = this.byType.get(String(value.type));
    if (typeof value.type !== "string" || !validate) {
      const known = [...this.byType.keys()].join(", ");
      throw new InvalidCommand(`type: must be one of ${known}`, "type");
    }
    if (!validate(value)) throw describe(validate.errors ?? []);
    return { command: value as unknown as CheckoutCommand, text };
  }
}

function describe(errors: ErrorObject[]): InvalidCommand {
  const problems = new Map<string, string>();
  for (const error of errors) {
    const field = fieldOf(error);
    // anyOf reports each alternative and then itself; the first says enough.
    if (!problems.has(field)) problems.set(field, `${field}: ${messageOf(error)}`);
  }
  return refusal(problems);
}

/** One InvalidCommand for problems by field, at most PROBLEM_LIMIT of them spelt out. */
function refusal(problems: Map<string, string>): InvalidCommand {
  const lines = [...problems.values()];
  const hidden = lines.length - PROBLEM_LIMIT;
  const shown = lines.slice(0, PROBLEM_LIMIT).concat(hidden > 0 ? [`... and ${hidden} more`] : []);
  return new InvalidCommand(shown.join("; "), [...problems.keys()][0] ?? "command");
}

function messageOf(error: ErrorObject): string {
  if (error.keyword === "required") return "is required";
  if (error.keyword === "additionalProperties") return unknownField(error);
  return error.message ?? "is invalid";
}

/** `is not a known field`, and the known one it is closest to, as the Python producer says. */
function unknownField(error: ErrorObject): string {
  const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
  const near = closest(String(error.params.additionalProperty), known);
  return near === undefined ? "is not a known field" : `is not a known field; did you mean ${near}?`;
}

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.split("/").slice(1);
  if (error.keyword === "required") path.push(String(error.params.missingProperty));
  if (error.keyword === "additionalProperties") path.push(String(error.params.additionalProperty));
  return path.map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~")).join(".") || "command";
}
