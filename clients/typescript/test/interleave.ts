/**
 * The TypeScript half of tests/e2e/test_typescript_producer.py, one process for the
 * whole test: each line on stdin is a JSON array of commands; they are enqueued with
 * a producer configured from CHECKOUT_* like a worker (the first through `enqueue`,
 * the rest through `enqueueMany`, so both paths meet real workers), then one line
 * {"enqueued": N} is written, which is the caller's cue to go on.
 */
import { createInterface } from "node:readline";

import { CheckoutProducer, type CheckoutCommand } from "../src/index.js";

async function enqueueBatch(producer: CheckoutProducer, commands: CheckoutCommand[]): Promise<number> {
  const [first, ...rest] = commands;
  if (first === undefined) return 0;
  await producer.enqueue(first);
  return 1 + (await producer.enqueueMany(rest));
}

async function main(): Promise<void> {
  const producer = new CheckoutProducer();
  try {
    for await (const line of createInterface({ input: process.stdin })) {
      if (!line.trim()) continue;
      const enqueued = await enqueueBatch(producer, JSON.parse(line) as CheckoutCommand[]);
      process.stdout.write(`${JSON.stringify({ enqueued })}\n`);
    }
  } finally {
    await producer.close();
  }
}

await main();
