/**
 * The producer against a real Redis: bad commands are refused with the position and
 * field named and nothing sent; good ones land as the enqueue script writes them.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { Redis } from "ioredis";

import { CheckoutProducer, InvalidCommand, InvalidRunId, type CheckoutCommand } from "../src/index.js";
import { testRedis, uniqueNames, type TestRedis } from "./support.js";

const create = (id: string, session: string): CheckoutCommand => ({
  type: "create_session",
  command_id: id,
  session_id: session,
});
// What plain JavaScript may hand over: the types say nothing, validation does.
const untyped = (value: unknown) => value as CheckoutCommand;
const update = (id: string, session: string, amount: unknown) =>
  untyped({
    type: "update_session",
    command_id: id,
    session_id: session,
    updates: { line_items: [{ id: "li-1", type: "product", total_amount: amount }] },
  });

describe("CheckoutProducer", () => {
  let redis: TestRedis;
  let client: Redis;
  let producer: CheckoutProducer;
  let names: { prefix: string; queue: string };

  before(async () => {
    redis = await testRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    await client.quit();
    await redis.stop();
  });
  beforeEach(() => {
    names = uniqueNames();
    producer = new CheckoutProducer({ redisUrl: redis.url, ...names });
  });
  afterEach(() => producer.close());

  async function nothingSent(): Promise<void> {
    assert.equal(await client.llen(names.queue), 0);
    assert.deepEqual(await client.keys(`${names.prefix}:*`), []);
  }

  it("refuses a batch with a bad command, naming its position and field, and sends none", async () => {
    const commands = [create("c-1", "s-1"), update("c-2", "s-1", 100), update("c-3", "s-1", "12")];
    await assert.rejects(producer.enqueueMany(commands), (error: unknown) => {
      assert.ok(error instanceof InvalidCommand);
      assert.equal(error.position, 2);
      assert.equal(error.field, "updates.line_items.0.total_amount");
      assert.match(error.message, /^command 2: updates\.line_items\.0\.total_amount: must be integer/);
      return true;
    });
    await nothingSent();
  });

  it("refuses a command past CHECKOUT_MAX_COMMAND_BYTES, saying its size, and sends none", async () => {
    const big = untyped({
      ...create("c-big", "s-1"),
      type: "update_session",
      updates: { buyer: { email: "m@example.com", note: "é".repeat(128 * 1024) } }, // > 256 KiB
    });
    await assert.rejects(producer.enqueueMany([create("c-1", "s-1"), big]), (error: unknown) => {
      assert.ok(error instanceof InvalidCommand);
      assert.equal(error.position, 1);
      assert.match(error.message, /command 1: command: 262\d{3} bytes of JSON, more than CHECKOUT_MAX_COMMAND_BYTES \(262144\)/);
      return true;
    });
    await nothingSent();
  });

  it("refuses a batch with a number the seed's side cannot read back, and sends none", async () => {
    const withUpdates = (updates: unknown) => untyped({ ...update("c-2", "s-1", 1), updates });
    const cases: [unknown, string][] = [
      [{ buyer: { x_meta: { serial: 2 ** 64 } } }, "updates.buyer.x_meta.serial"],
      [{ line_items: [{ type: "p", total_amount: 1, weight: NaN }] }, "updates.line_items.0.weight"],
      [{ buyer: { n: 12345678901234567890n } }, "updates.buyer.n"],
    ];
    for (const [updates, field] of cases) {
      await assert.rejects(producer.enqueueMany([create("c-1", "s-1"), withUpdates(updates)]), (error: unknown) => {
        assert.ok(error instanceof InvalidCommand, String(error));
        assert.equal(error.position, 1);
        assert.equal(error.field, field);
        assert.ok(error.message.startsWith(`command 1: ${field}: `), error.message);
        return true;
      });
    }
    await nothingSent();
  });

  it("names an unknown field, a missing field and an unknown type", async () => {
    const cases: [unknown, string][] = [
      [{ ...create("c-1", "s-1"), colour: "red" }, "colour"],
      [{ type: "cancel_session", command_id: "c-1" }, "session_id"],
      [{ type: "refund_session", command_id: "c-1", session_id: "s-1" }, "type"],
      [{ ...update("c-1", "s-1", 1), updates: { buyer: null } }, "updates.buyer"],
      [{ ...create("c-1", "s 1") }, "session_id"],
      ["not an object", "command"],
    ];
    for (const [command, field] of cases) {
      await assert.rejects(producer.enqueue(untyped(command)), (error: unknown) => {
        assert.ok(error instanceof InvalidCommand, String(error));
        assert.equal(error.field, field, error.message);
        assert.ok(error.message.startsWith(`${field}: `), error.message);
        return true;
      });
    }
    await nothingSent();
  });

  it("refuses ids holding control characters, lone surrogates or other characters", async () => {
    const forged = "c-1\n[2026-12-02 10:00:00,000: INFO/MainProcess] session.completed";
    const bad = [forged, "c\u001b]0;x\u0007\u001b[2J", "\ud800", "c 1", "é", "x".repeat(256), ""];
    for (const id of bad) {
      await assert.rejects(producer.enqueue(create(id, "s-1")), (error: unknown) => {
        assert.ok(error instanceof InvalidCommand, String(error));
        assert.equal(error.field, "command_id", error.message);
        return true;
      });
      await assert.rejects(producer.enqueue(create("c-1", id)), InvalidCommand);
    }
    await nothingSent();
  });

  it("refuses a run id that would collide with another run's keys, sending nothing", async () => {
    for (const runId of ["rk2:ex", "run\n1", "\ud800", "a".repeat(129)]) {
      await assert.rejects(producer.enqueueMany([create("c-1", "s-1")], { runId }), (error: unknown) => {
        assert.ok(error instanceof InvalidRunId, String(error));
        assert.match(error.message, /^run id .*: 1-128 characters/);
        assert.ok(!error.message.includes("\n"), "the message is one line");
        return true;
      });
    }
    await nothingSent();
  });

  it("enqueues through the pipeline script: message, journal entry and session sequence", async () => {
    assert.equal(await producer.enqueue(create("c-1", "s-1")), "c-1");
    assert.equal(await producer.enqueue(update("c-2", "s-1", 250)), "c-2");
    const messages = (await client.lrange(names.queue, 0, -1)).reverse().map((m) => JSON.parse(m));
    assert.deepEqual(
      messages.map((m) => [m.headers.task, m.headers.argsrepr]),
      [
        ["checkout.apply_command", "(command c-1)"],
        ["checkout.apply_command", "(command c-2)"],
      ],
    );
    const [[command], { jid }] = JSON.parse(messages[1].body);
    assert.deepEqual(command, update("c-2", "s-1", 250));
    const entry = await client.hgetall(`${names.prefix}:j:${jid}`);
    assert.deepEqual([entry.cid, entry.sid, entry.seq, entry.q], ["c-2", "s-1", "2", names.queue]);
    assert.equal(await client.hget(`${names.prefix}:s:s-1`, "next"), "2");
  });

  it("sends many in batches, in order, and counts them under a run", async () => {
    const commands = [create("c-0", "s-1")];
    for (let i = 1; i < 1234; i += 1) commands.push(update(`c-${i}`, "s-1", i));
    assert.equal(await producer.enqueueMany(commands, { runId: "run-1" }), 1234);
    const messages = await client.lrange(names.queue, 0, -1);
    const ids = messages.reverse().map((m) => JSON.parse(JSON.parse(m).body)[0][0].command_id);
    assert.deepEqual(ids, commands.map((c) => c.command_id));
    assert.equal(await client.hget(`${names.prefix}:s:s-1`, "next"), "1234");
    assert.equal(await client.hget(`${names.prefix}:run:run-1:n`, "sent"), "1234");
  });

  it("reloads the script when Redis has forgotten it (NOSCRIPT)", async () => {
    await producer.enqueue(create("c-1", "s-1"));
    await client.script("FLUSH");
    assert.equal(await producer.enqueueMany([update("c-2", "s-1", 1)]), 1);
    await client.script("FLUSH");
    assert.equal(await producer.enqueue(update("c-3", "s-1", 2)), "c-3");
    assert.equal(await client.llen(names.queue), 3);
  });

  it("sends bulk commands 50 to a Celery message, perMessage overriding", async () => {
    const bulk = new CheckoutProducer({ redisUrl: redis.url, ...names, bulk: true });
    const three = new CheckoutProducer({ redisUrl: redis.url, ...names, perMessage: 3 });
    try {
      const commands = [create("b-0", "s-b")];
      for (let i = 1; i < 120; i += 1) commands.push(update(`b-${i}`, "s-b", i));
      assert.equal(await bulk.enqueueMany(commands), 120);
      await three.enqueueMany([create("t-0", "s-t"), update("t-1", "s-t", 1)]);
    } finally {
      await Promise.all([bulk.close(), three.close()]);
    }
    const messages = (await client.lrange(names.queue, 0, -1)).reverse().map((m) => JSON.parse(m));
    assert.ok(messages.every((m) => m.headers.task === "checkout.apply_commands"));
    assert.ok(messages.every((m) => m.headers.checkout_journaled === true));
    const bodies = messages.map((m) => JSON.parse(m.body)[0]);
    assert.deepEqual(bodies.map(([commands]) => commands.length), [50, 50, 20, 2]);
    assert.equal(bodies[0][0][0].command_id, "b-0");
    assert.equal(bodies[0][1].length, 50); // a jid per command
    assert.equal(await client.hget(`${names.prefix}:s:s-b`, "next"), "120");
  });

  it("refuses a perMessage outside 1 to 100", () => {
    for (const perMessage of [0, 101, 1.5]) {
      assert.throws(
        () => new CheckoutProducer({ redisUrl: redis.url, ...names, perMessage }),
        /perMessage must be an integer from 1 to 100/,
      );
    }
  });

  it("keeps each session's order when producers race a forgotten script", async () => {
    // Several producers, each a pipeline of many calls, start together on an empty
    // script cache: one loads the script while Redis still reads another's pipeline.
    const others = [1, 2].map(() => new CheckoutProducer({ redisUrl: redis.url, ...names }));
    try {
      for (let round = 0; round < 12; round += 1) {
        await client.script("FLUSH");
        const sends = [producer, ...others].map((p, n) => {
          const commands = [];
          for (let i = 0; i < 1000; i += 1) commands.push(update(`r${round}-p${n}-${i}`, `s-${n}-${i % 7}`, i));
          return p.enqueueMany(commands);
        });
        assert.deepEqual(await Promise.all(sends), [1000, 1000, 1000]);
      }
    } finally {
      await Promise.all(others.map((p) => p.close()));
    }
    const messages = (await client.lrange(names.queue, 0, -1)).reverse();
    assert.equal(messages.length, 36000);
    // Per session: [send position, sequence number] pairs; sorted by the first, the
    // second must rise (the ordering gate hands commands out by sequence number).
    const sequences = new Map<string, [number, number][]>();
    for (const message of messages) {
      const [[command], { jid }] = JSON.parse(JSON.parse(message).body);
      const [round, , i] = command.command_id.split("-");
      const sent = Number(round.slice(1)) * 1e6 + Number(i);
      const seq = Number(await client.hget(`${names.prefix}:j:${jid}`, "seq"));
      sequences.set(command.session_id, [...(sequences.get(command.session_id) ?? []), [sent, seq]]);
    }
    for (const pairs of sequences.values()) {
      const seqs = pairs.sort((a, b) => a[0] - b[0]).map(([, seq]) => seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    }
  });
});
