/**
 * Numbers the seed's side cannot read back are refused before anything is sent, with
 * the field's path and the workers' wording (schemas/numbers.py), in open fields too.
 * No Redis: the validator alone.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CommandValidator, InvalidCommand } from "../src/index.js";

const RANGE = "is outside the safe integer range ±(2^53-1) that the TypeScript side can read";
const NOT_A_NUMBER = "is not a number JSON or DynamoDB can hold";
const BIGINT = "is a BigInt, which JSON cannot carry: give a number within ±(2^53-1)";

// Where the number goes ("X"), and the path an error names.
const PLACES: [string, unknown, string][] = [
  ["buyer open field", { buyer: { x_meta: { serial: "X" } } }, "updates.buyer.x_meta.serial"],
  ["nested array", { buyer: { history: [[1, "X"]] } }, "updates.buyer.history.0.1"],
  [
    "line item extra attribute",
    { line_items: [{ type: "product", total_amount: 100, weight: "X" }] },
    "updates.line_items.0.weight",
  ],
  ["shipping_address", { shipping_address: { geo: { lat: "X" } } }, "updates.shipping_address.geo.lat"],
  [
    "payment instrument",
    { payment_instruments: [{ id: "pi", n: "X" }] },
    "updates.payment_instruments.0.n",
  ],
];
const REFUSED: [unknown, string][] = [
  [2 ** 53, `9007199254740992 ${RANGE}`],
  [-(2 ** 53), `-9007199254740992 ${RANGE}`],
  [2 ** 64, `18446744073709552000 ${RANGE}`],
  [12345678901234567890, `12345678901234567000 ${RANGE}`], // what the double holds
  [1e300, `1e+300 ${RANGE}`],
  [NaN, `NaN ${NOT_A_NUMBER}`],
  [Infinity, `Infinity ${NOT_A_NUMBER}`],
  [-Infinity, `-Infinity ${NOT_A_NUMBER}`],
  [12345678901234567890n, `12345678901234567890n ${BIGINT}`],
  [5n, `5n ${BIGINT}`],
  [new Number(NaN), `NaN ${NOT_A_NUMBER}`],
  [{ toJSON: () => Infinity }, `Infinity ${NOT_A_NUMBER}`],
  [1e-300, "1e-300 is closer to 0 than DynamoDB's smallest number (1E-130)"],
];
const ACCEPTED = [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, -0.25, 0, 0.1, 2 ** 52, 1e-130];

const validator = new CommandValidator();

/** `shape` with its "X" replaced by `value`. */
function placed(shape: unknown, value: unknown): unknown {
  if (shape === "X") return value;
  if (Array.isArray(shape)) return shape.map((member) => placed(member, value));
  if (typeof shape === "object" && shape !== null) {
    return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, placed(v, value)]));
  }
  return shape;
}

const updateWith = (updates: unknown) => ({
  type: "update_session",
  command_id: "c-1",
  session_id: "s-1",
  updates,
});

function refusal(command: unknown): InvalidCommand {
  try {
    validator.prepare(command);
  } catch (error) {
    assert.ok(error instanceof InvalidCommand, String(error));
    return error;
  }
  assert.fail("the command was accepted");
}

describe("numbers the seed's side cannot read back", () => {
  for (const [place, shape, path] of PLACES) {
    it(`are refused in a ${place}, naming ${path}`, () => {
      for (const [value, problem] of REFUSED) {
        const error = refusal(updateWith(placed(shape, value)));
        assert.equal(error.message, `${path}: ${problem}`);
        assert.equal(error.field, path);
      }
    });

    it(`are accepted within ±(2^53-1) in a ${place}, and sent as given`, () => {
      for (const value of ACCEPTED) {
        const updates = placed(shape, value);
        assert.deepEqual(JSON.parse(validator.prepare(updateWith(updates)).text).updates, updates);
      }
    });
  }

  it("are all named, in document order, at most five spelt out", () => {
    const buyer = { a: NaN, b: [1, 2 ** 60], c: 1n, d: Infinity, e: -Infinity, f: 1e20, g: NaN };
    const error = refusal(updateWith({ buyer }));
    assert.equal(
      error.message,
      [
        `updates.buyer.a: NaN ${NOT_A_NUMBER}`,
        `updates.buyer.b.1: 1152921504606847000 ${RANGE}`,
        `updates.buyer.c: 1n ${BIGINT}`,
        `updates.buyer.d: Infinity ${NOT_A_NUMBER}`,
        `updates.buyer.e: -Infinity ${NOT_A_NUMBER}`,
        "... and 2 more",
      ].join("; "),
    );
    assert.equal(error.field, "updates.buyer.a");
  });

  it("are refused outside updates too, and in typed arrays", () => {
    assert.equal(refusal({ ...updateWith({}), expected_version: 2 ** 53 }).field, "expected_version");
    const error = refusal(updateWith({ buyer: { samples: new Float64Array([1, NaN]) } }));
    assert.equal(error.message, `updates.buyer.samples.1: NaN ${NOT_A_NUMBER}`);
  });

  it("leave a cycle to JSON.stringify's own error", () => {
    const buyer: Record<string, unknown> = { email: "m@example.com" };
    buyer.self = buyer;
    assert.throws(() => validator.prepare(updateWith({ buyer })), TypeError);
  });

  it("let a Date through as the string it becomes", () => {
    const prepared = validator.prepare(updateWith({ buyer: { seen: new Date(0) } }));
    assert.equal(JSON.parse(prepared.text).updates.buyer.seen, "1970-01-01T00:00:00.000Z");
  });
});
