/**
 * Test support: a redis-server of the tests' own (they flush scripts, so never a
 * shared one), from REDIS_SERVER (the binary pytest's stack uses) or PATH.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";

import { Redis } from "ioredis";

export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

const START_DEADLINE_MS = 60_000;

/** A redis-server started on a free port; `stop` ends it. */
export async function testRedis(): Promise<TestRedis> {
  const port = await freePort();
  const server = spawn(
    process.env.REDIS_SERVER || "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${port}/0`;
  await waitForPing(url, server);
  return { url, stop: () => stopProcess(server) };
}

/** A key prefix and queue no other test uses. */
export function uniqueNames(): { prefix: string; queue: string } {
  const suffix = randomBytes(5).toString("hex");
  return { prefix: `ts-test-${suffix}`, queue: `ts-test.commands.${suffix}` };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`redis-server exited with ${server.exitCode}`);
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`redis-server at ${url} did not answer: ${error}`);
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}
