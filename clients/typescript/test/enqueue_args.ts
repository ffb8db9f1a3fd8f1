/**
 * The TypeScript half of tests/integration/test_protocol_producers.py: a JSON object
 * {"commands": [...], "runId": "...", "perMessage": N, "redisUrls": [...], "shard": K} on
 * stdin (the last two optional), and on stdout the ARGV of the `enqueue` call this producer
 * would send for them to shard K (no Redis call made).
 */
import { readFileSync } from "node:fs";

import { CheckoutProducer, type CheckoutCommand } from "../src/index.js";

const input = JSON.parse(readFileSync(0, "utf-8")) as {
  commands: CheckoutCommand[];
  runId?: string;
  perMessage?: number;
  redisUrls?: string[];
  shard?: number;
};
const producer = new CheckoutProducer({
  perMessage: input.perMessage ?? 1,
  redisOptions: { lazyConnect: true },
  ...(input.redisUrls ? { redisUrls: input.redisUrls } : {}),
});
const args = producer.enqueueArgs(producer.prepareAll(input.commands), input.runId, input.shard);
process.stdout.write(JSON.stringify(args));
