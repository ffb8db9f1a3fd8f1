/**
 * The shard function, pinned on fixed ids: tests/unit/test_shards.py pins Python's
 * worker/delivery/shards.py on the same table, so both producers route alike. And the
 * shard tag every jid starts with when there are several shards (worker/delivery/jids.py),
 * against two real redis-servers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Redis } from "ioredis";

import { CheckoutProducer, sessionIdFor, shardFor, shardOf, shardTag, type CheckoutCommand } from "../src/index.js";
import { testRedis, uniqueNames, type TestRedis } from "./support.js";

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

describe("shard tags", () => {
  let servers: TestRedis[];
  let clients: Redis[];

  before(async () => {
    servers = [await testRedis(), await testRedis()];
    clients = servers.map((server) => new Redis(server.url));
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.quit()));
    await Promise.all(servers.map((server) => server.stop()));
  });

  const create = (id: string, session: string): CheckoutCommand => ({
    type: "create_session",
    command_id: id,
    session_id: session,
  });

  /** The task ids (each message's jid) queued on `client`, oldest first. */
  async function queuedJids(client: Redis, queue: string): Promise<string[]> {
    const messages = await client.lrange(queue, 0, -1);
    return messages.reverse().map((text) => (JSON.parse(text) as { headers: { id: string } }).headers.id);
  }

  it("is empty for one shard and s<K> for shard K of several", () => {
    assert.equal(shardTag(0, 1), "");
    assert.deepEqual([0, 1, 2].map((shard) => shardTag(shard, 3)), ["s0", "s1", "s2"]);
    assert.throws(() => shardTag(3, 3), RangeError);
  });

  it("starts every jid a shard's enqueue makes with that shard's tag", async () => {
    const names = uniqueNames();
    const producer = new CheckoutProducer({ redisUrls: servers.map((server) => server.url), ...names });
    // "s-1" is on shard 0 of 2, "order-42" on shard 1 (PINNED): the same call shape on each.
    assert.deepEqual([shardOf("s-1", 2), shardOf("order-42", 2)], [0, 1]);
    await producer.enqueueMany([create("c-0", "s-1"), create("c-1", "order-42")]);
    await producer.close();
    const [onZero, onOne] = await Promise.all(clients.map((client) => queuedJids(client, names.queue)));
    assert.equal(onZero!.length, 1);
    assert.equal(onOne!.length, 1);
    assert.match(onZero![0]!, /^s0:\d+-1$/);
    assert.match(onOne![0]!, /^s1:\d+-1$/);
    for (const [shard, jid] of [onZero![0]!, onOne![0]!].entries()) {
      // The journal entry is under the tagged jid, on its own shard only.
      assert.equal(await clients[shard]!.hget(`${names.prefix}:j:${jid}`, "cid"), `c-${shard}`);
    }
  });

  it("leaves the jids of a deployment of one Redis as <ms>-<n>", async () => {
    const names = uniqueNames();
    const producer = new CheckoutProducer({ redisUrl: servers[0]!.url, ...names });
    await producer.enqueueMany([create("c-0", "s-1"), create("c-1", "order-42")]);
    await producer.close();
    const jids = await queuedJids(clients[0]!, names.queue);
    assert.equal(jids.length, 2);
    for (const jid of jids) assert.match(jid, /^\d+-\d+$/);
  });
});
