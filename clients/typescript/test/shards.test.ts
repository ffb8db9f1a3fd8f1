/**
 * The shard function, pinned on fixed ids: tests/unit/test_shards.py pins Python's
 * worker/delivery/shards.py on the same table, so both producers route alike.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { sessionIdFor, shardFor, shardOf } from "../src/index.js";

// session id -> its shard with 1, 2, 3, 4 and 7 shards.
export const PINNED: [string, number[]][] = [
  ["s-1", [0, 0, 2, 2, 3]],
  ["order-42", [0, 1, 1, 3, 5]],
  ["cs_9f8e7d", [0, 0, 2, 2, 3]],
  ["é-ünïcode", [0, 1, 1, 1, 1]],
  ["", [0, 0, 1, 0, 1]],
];

describe("shards", () => {
  it("puts each session on the pinned shard", () => {
    for (const [sessionId, expected] of PINNED) {
      assert.deepEqual(
        [1, 2, 3, 4, 7].map((shards) => shardOf(sessionId, shards)),
        expected,
        sessionId,
      );
    }
  });

  it("routes a create without a session_id by the id the worker gives it", () => {
    assert.equal(sessionIdFor("order-42-create"), "dc8d5684-67da-51d4-a773-0892ebd39e19");
    assert.equal(shardFor(undefined, "order-42-create", 3), 2);
    assert.equal(shardFor("order-42", "anything", 3), 1);
  });
});
