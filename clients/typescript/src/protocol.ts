/**
 * The delivery protocol's spec, `worker/delivery/protocol.json`, read from the
 * repository as the Python side reads it: every script call is built from the names
 * of its operation's arguments, in the spec's order (worker/delivery/protocol.py).
 */
import { DEFAULT_PROTOCOL_PATH, readText } from "./paths.js";

export type ArgumentValue = string | number;

interface OperationSpec {
  arguments: string[];
  repeated?: string[];
  optional?: string[];
}

interface ProtocolSpec {
  operations: Record<string, OperationSpec>;
  limits: Record<string, number>;
}

export class Protocol {
  private readonly spec: ProtocolSpec;

  constructor(path: string = DEFAULT_PROTOCOL_PATH) {
    this.spec = JSON.parse(readText(path)) as ProtocolSpec;
  }

  limit(name: string): number {
    const value = this.spec.limits[name];
    if (value === undefined) throw new Error(`protocol.json has no limit ${name}`);
    return value;
  }

  /** The arguments of one call after the operation's name and the key prefix. */
  arguments(
    operation: string,
    values: Record<string, ArgumentValue>,
    repeated: Record<string, ArgumentValue>[] = [],
  ): string[] {
    const spec = this.spec.operations[operation];
    if (spec === undefined) throw new Error(`protocol.json has no operation ${operation}`);
    const given = Object.keys(values);
    const unknown = given.filter((name) => !spec.arguments.includes(name));
    const missing = spec.arguments.filter((name) => !given.includes(name));
    if (unknown.length || missing.length) {
      throw new Error(`${operation}: missing arguments [${missing}], unknown [${unknown}]`);
    }
    const args = spec.arguments.map((name) => String(values[name]));
    for (const row of repeated) {
      for (const name of spec.repeated ?? []) args.push(String(row[name]));
    }
    return args;
  }
}
