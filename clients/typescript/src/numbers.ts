/**
 * Numbers the seed's TypeScript service can read back, wherever a command puts them
 * (the Python side's rule: schemas/numbers.py). Its AWS document client returns a
 * number past ±(2^53-1) as a BigInt (JSON.stringify refuses it) or throws, and NaN or
 * ±Infinity would reach the queue as null: JSON.stringify writes them so, silently.
 * A BigInt makes JSON.stringify throw. The open attributes take any JSON, so no
 * schema stops these: the command is walked for them before it is written as JSON.
 */

/** One number the command must not carry: where (dotted, as errors name fields) and why. */
export interface NumberProblem {
  field: string;
  message: string;
}

const RANGE = "is outside the safe integer range ±(2^53-1) that the TypeScript side can read";
const NOT_A_NUMBER = "is not a number JSON or DynamoDB can hold";

/** What is wrong with `value` as a number, or undefined (also for what is no number). */
/** DynamoDB numbers run from 1E-130 up: a smaller one cannot be stored. */
const DYNAMODB_SMALLEST = 1e-130;

export function numberProblem(value: unknown): string | undefined {
  if (typeof value === "bigint") {
    return `${value}n is a BigInt, which JSON cannot carry: give a number within ±(2^53-1)`;
  }
  if (typeof value !== "number") return undefined;
  if (Number.isNaN(value)) return `NaN ${NOT_A_NUMBER}`;
  if (!Number.isFinite(value)) return `${value > 0 ? "" : "-"}Infinity ${NOT_A_NUMBER}`;
  // Every double past 2^53 is an integer: this refuses 1e300 as well as 2**53.
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) return `${value} ${RANGE}`;
  if (value !== 0 && Math.abs(value) < DYNAMODB_SMALLEST) {
    return `${value} is closer to 0 than DynamoDB's smallest number (1E-130)`;
  }
  return undefined;
}

/**
 * Each number in `value` that `numberProblem` refuses, in document order, at the
 * path JSON.stringify would write it to (after `toJSON`; skipping what it skips).
 */
export function unsafeNumbers(value: unknown): NumberProblem[] {
  const problems: NumberProblem[] = [];
  walk(value, "", [], new Set(), problems);
  return problems;
}

function walk(
  value: unknown,
  key: string,
  path: string[],
  ancestors: Set<object>,
  problems: NumberProblem[],
): void {
  value = asJson(value, key);
  const message = numberProblem(value);
  if (message) {
    problems.push({ field: path.join(".") || "command", message });
    return;
  }
  // A cycle: JSON.stringify throws on it, later, in its own words.
  if (typeof value !== "object" || value === null || ancestors.has(value)) return;
  ancestors.add(value);
  const entries = Array.isArray(value)
    ? value.map((member, n) => [String(n), member])
    : Object.entries(value);
  for (const [name, member] of entries) {
    path.push(name);
    walk(member, name, path, ancestors, problems);
    path.pop();
  }
  ancestors.delete(value);
}

/** `value` as JSON.stringify sees it: after its `toJSON`, a boxed number or BigInt unboxed. */
function asJson(value: unknown, key: string): unknown {
  if (typeof value === "object" && value !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return toJSON.call(value, key);
    if (value instanceof Number || value instanceof BigInt) return value.valueOf();
  }
  return value;
}
