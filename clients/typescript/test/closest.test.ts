/**
 * The suggestion for an unknown field: the same name Python's difflib picks (the ratios
 * below are difflib's own, printed by Python), and in the validator's message.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CommandValidator, InvalidCommand } from "../src/index.js";
import { closest, ratio } from "../src/closest.js";

// [a, b, SequenceMatcher(None, a, b).ratio()]
const RATIOS: [string, string, number][] = [
  ["session_id", "sesion_id", 0.9473684210526315],
  ["target", "tagret", 0.8333333333333334],
  ["session_id", "reason", 0.375],
  ["abc", "", 0],
  ["", "", 1],
  ["é𝒳z", "e𝒳z", 0.6666666666666666], // code points, not UTF-16 units
  // Words of 200 characters or more: difflib's autojunk drops their popular characters.
  ["x".repeat(10) + "y", "x".repeat(250), 0.07662835249042145],
  ["ab".repeat(3) + "zq", "q" + "ab".repeat(120) + "z", 0.056],
  ["hello_world", "hello_".repeat(40) + "world", 0.0859375],
];

const FIELDS = ["command_id", "session_id", "type", "updates", "expected_version"];

function refusal(command: unknown): InvalidCommand {
  try {
    new CommandValidator().prepare(command);
  } catch (error) {
    assert.ok(error instanceof InvalidCommand, String(error));
    return error;
  }
  assert.fail("accepted");
}

describe("closest", () => {
  it("scores as difflib's SequenceMatcher does", () => {
    for (const [a, b, expected] of RATIOS) assert.equal(ratio(a, b), expected, `${a} / ${b}`);
  });

  it("picks what difflib.get_close_matches(word, names, n=1) picks", () => {
    const picks: [string, string | undefined][] = [
      ["sesion_id", "session_id"],
      ["tpye", "type"],
      ["update", "updates"],
      ["expectedversion", "expected_version"],
      ["colour", undefined],
      ["id", undefined],
    ];
    for (const [word, pick] of picks) assert.equal(closest(word, FIELDS), pick, word);
  });

  it("names the field meant in the validator's message, at its own level", () => {
    const created = { type: "create_session", command_id: "c-1", sesion_id: "s-1" };
    assert.equal(refusal(created).message, "sesion_id: is not a known field; did you mean session_id?");
    const updated = { type: "update_session", command_id: "c-1", session_id: "s-1", updates: { curency: "EUR" } };
    assert.equal(
      refusal(updated).message,
      "updates.curency: is not a known field; did you mean currency?",
    );
    const cancelled = { type: "cancel_session", command_id: "c-1", session_id: "s-1", reason: "x" };
    assert.equal(refusal(cancelled).message, "reason: is not a known field");
  });
});
