/**
 * Commands per second enqueued by the TypeScript producer and by the Python one
 * (`CommandProducer.send_prepared`), same commands, same fresh redis-server, one run:
 *
 *   npm run bench -- [COUNT] [ROUNDS]     # default 50000 update commands, 3 rounds each
 *
 * Rounds alternate TypeScript and Python, Redis is flushed between them, and the
 * median round is reported: validation and sending apart, and together.
 * PYTHON overrides the interpreter (default: the repository's .venv/bin/python).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import { Redis } from "ioredis";

import { CheckoutProducer, type UpdateSession } from "../src/index.js";
import { testRedis } from "../test/support.js";

const REPOSITORY = fileURLToPath(new URL("../../../../", import.meta.url));
const PYTHON_HALF = fileURLToPath(new URL("../../bench/python_enqueue_rate.py", import.meta.url));
const SESSIONS = 1000;

type Timing = { validate_s: number; send_s: number };

function commands(count: number): UpdateSession[] {
  return Array.from({ length: count }, (_, n) => ({
    type: "update_session",
    command_id: `bench-${n}`,
    session_id: `s-bench-${n % SESSIONS}`,
    updates: {
      line_items: [{ id: `li-${n}`, type: "product", total_amount: 1250 + (n % 100) }],
      buyer: { email: "bench@example.com" },
    },
  }));
}

async function typescriptRound(url: string, batch: UpdateSession[]): Promise<Timing> {
  const producer = new CheckoutProducer({ redisUrl: url, prefix: "bench", queue: "bench.q" });
  await producer.enqueue({ type: "create_session", command_id: "warm-up" }); // connect, load script
  try {
    const started = performance.now();
    const prepared = producer.prepareAll(batch);
    const validated = performance.now();
    await producer.sendPrepared(prepared);
    const finished = performance.now();
    return { validate_s: (validated - started) / 1000, send_s: (finished - validated) / 1000 };
  } finally {
    await producer.close();
  }
}

async function pythonRound(url: string, batch: UpdateSession[]): Promise<Timing> {
  const python = process.env.PYTHON ?? `${REPOSITORY}.venv/bin/python`;
  const env = { ...process.env, CHECKOUT_REDIS_URL: url, CHECKOUT_KEY_PREFIX: "bench" };
  const child = spawn(python, [PYTHON_HALF], {
    cwd: REPOSITORY,
    env: { ...env, CHECKOUT_COMMANDS_QUEUE: "bench.q", PYTHONPATH: REPOSITORY },
    stdio: ["pipe", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  child.stdin.end(batch.map((command) => JSON.stringify(command)).join("\n"));
  const code = await exited;
  if (code !== 0) throw new Error(`${python} ${PYTHON_HALF} exited with ${code}`);
  return JSON.parse(output) as Timing;
}

function median(timings: Timing[], pick: (t: Timing) => number): number {
  const sorted = timings.map(pick).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function row(name: string, count: number, timings: Timing[]): string {
  const rate = (seconds: number) => Math.round(count / seconds).toLocaleString("en-US");
  const send = median(timings, (t) => t.send_s);
  const validate = median(timings, (t) => t.validate_s);
  const total = median(timings, (t) => t.send_s + t.validate_s);
  return `| ${name} | ${rate(send)} | ${rate(validate)} | ${rate(total)} |`;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 50_000);
  const rounds = Number(process.argv[3] ?? 3);
  // A redis-server of our own: the bench flushes it between rounds.
  const redis = await testRedis();
  const client = new Redis(redis.url);
  const batch = commands(count);
  const results: Record<string, Timing[]> = { typescript: [], python: [] };
  try {
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, run] of [["typescript", typescriptRound], ["python", pythonRound]] as const) {
        await client.flushall();
        results[name]!.push(await run(redis.url, batch));
        if ((await client.llen("bench.q")) < count) throw new Error(`${name} did not enqueue all`);
      }
    }
  } finally {
    await client.quit();
    await redis.stop();
  }
  console.log(`${count} update commands, ${SESSIONS} sessions, median of ${rounds} rounds, commands/s:`);
  console.log("| producer | send (script, pipelined) | validate | validate + send |");
  console.log("|---|---|---|---|");
  console.log(row("TypeScript (ioredis, ajv)", count, results.typescript!));
  console.log(row("Python (redis-py, pydantic)", count, results.python!));
}

await main();
