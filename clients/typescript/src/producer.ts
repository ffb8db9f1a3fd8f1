/**
 * The TypeScript producer: validates commands, then enqueues them through the
 * pipeline's own Redis script (`worker/delivery/pipeline.lua`, op `enqueue`), exactly as the
 * Python producer (`tasks/producer.py`) does. The script writes the Celery message,
 * the session's next sequence number and the journal entry in one atomic step, so
 * what this enqueues is indistinguishable from what Python enqueues: same ordering,
 * same crash safety, same idempotency.
 */
import { Redis, type RedisOptions } from "ioredis";

import type { CheckoutCommand } from "./commands.js";
import { DEFAULT_SCRIPT_PATH, readText } from "./paths.js";
import { Protocol } from "./protocol.js";
import { shardFor, shardTag } from "./shards.js";
import { CommandValidator, InvalidCommand, type Prepared, checkRunId } from "./validation.js";

// Commands per script call, and calls per pipelined round trip: the Python
// producer's numbers (SCRIPT_BATCH, PIPELINE_CALLS).
export const SCRIPT_BATCH = 100;
export const PIPELINE_CALLS = 10;
const SCRIPT_COMMAND = "checkoutPipeline";
// tasks/producer.py BULK_COMMANDS_PER_MESSAGE and worker/delivery/journal.py MAX_COMMANDS_PER_MESSAGE.
export const BULK_COMMANDS_PER_MESSAGE = 50;
export const MAX_COMMANDS_PER_MESSAGE = 100;

export interface ProducerOptions {
  /** Default: CHECKOUT_REDIS_URL, else redis://127.0.0.1:6379/0. */
  redisUrl?: string;
  /**
   * Several Redis shards, in shard order (README "Scaling out"): each command goes to its
   * session's shard (`shards.ts`). Default: CHECKOUT_REDIS_URLS (comma-separated), which
   * replaces CHECKOUT_REDIS_URL as in the Python producer.
   */
  redisUrls?: string[];
  /** Extra ioredis options (timeouts, retries, TLS). */
  redisOptions?: RedisOptions;
  /** Key prefix of the pipeline's Redis keys. Default: CHECKOUT_KEY_PREFIX, else `checkout`. */
  prefix?: string;
  /** Queue name. Default: CHECKOUT_COMMANDS_QUEUE (or CHECKOUT_BULK_QUEUE with `bulk`). */
  queue?: string;
  /** Send to the bulk queue, which workers take after interactive commands. */
  bulk?: boolean;
  /**
   * Commands per Celery message, 1 to 100 (`enqueue_batched` above 1): Celery's cost per
   * message is shared by them, and the last waits for those before it. Default: 50 with
   * `bulk`, else 1, as the Python producer.
   */
  perMessage?: number;
  /** Default: CHECKOUT_VISIBILITY_TIMEOUT seconds × 1000, else 60000. */
  visibilityTimeoutMs?: number;
  /** The enqueue script; default the repository's worker/delivery/pipeline.lua. */
  scriptPath?: string;
  /** The protocol's spec (argument names, limits); default the repository's worker/delivery/protocol.json. */
  protocolPath?: string;
  /** The command schema; default the repository's schemas/json/commands.schema.json. */
  schemaPath?: string;
}

export interface EnqueueManyOptions {
  /** Count outcomes under this run (`checkout report`); a command the run already finished is skipped. */
  runId?: string;
}

/** Redis failed part-way; the first `sent` commands were enqueued. */
export class EnqueueFailed extends Error {
  override name = "EnqueueFailed";

  constructor(
    readonly sent: number,
    override readonly cause: unknown,
  ) {
    super(`Redis failed after ${sent} commands were enqueued: ${String(cause)}`);
  }
}

/** The shard list disagrees with what the shards record (worker/delivery/shard_records.py). */
export class ShardMismatch extends Error {
  override name = "ShardMismatch";
}

type ScriptRunner = {
  [SCRIPT_COMMAND](...args: (string | number)[]): Promise<string[]>;
};

export class CheckoutProducer {
  readonly prefix: string;
  readonly queue: string;
  private readonly shards: Redis[];
  private shardsChecked = false;
  private readonly validator: CommandValidator;
  private readonly visibilityMs: string;
  private readonly lua: string;
  private readonly protocol: Protocol;
  readonly perMessage: number;

  constructor(options: ProducerOptions = {}) {
    const env = process.env;
    this.prefix = options.prefix ?? env.CHECKOUT_KEY_PREFIX ?? "checkout";
    this.queue =
      options.queue ??
      (options.bulk
        ? (env.CHECKOUT_BULK_QUEUE ?? "checkout.bulk")
        : (env.CHECKOUT_COMMANDS_QUEUE ?? "checkout.commands"));
    const visibility =
      options.visibilityTimeoutMs ?? Number(env.CHECKOUT_VISIBILITY_TIMEOUT ?? 60) * 1000;
    this.visibilityMs = String(Math.trunc(visibility));
    this.perMessage = options.perMessage ?? (options.bulk ? BULK_COMMANDS_PER_MESSAGE : 1);
    if (
      !Number.isInteger(this.perMessage) ||
      this.perMessage < 1 ||
      this.perMessage > MAX_COMMANDS_PER_MESSAGE
    ) {
      throw new RangeError(
        `perMessage must be an integer from 1 to ${MAX_COMMANDS_PER_MESSAGE}: ${this.perMessage}`,
      );
    }
    this.validator = new CommandValidator(options.schemaPath);
    this.lua = readText(options.scriptPath ?? DEFAULT_SCRIPT_PATH);
    this.protocol = new Protocol(options.protocolPath);
    this.shards = redisUrls(options).map((url) => {
      const redis = new Redis(url, options.redisOptions ?? {});
      // defineCommand sends EVALSHA and falls back to EVAL (loading the script) on
      // NOSCRIPT, e.g. after a Redis restart or SCRIPT FLUSH.
      redis.defineCommand(SCRIPT_COMMAND, { lua: this.lua, numberOfKeys: 0 });
      return redis;
    });
  }

  /**
   * Validate (throws InvalidCommand) and enqueue one command; resolves to its command_id.
   * The types are the schema's; values from plain JavaScript are validated all the same.
   */
  async enqueue(command: CheckoutCommand): Promise<string> {
    const prepared = this.validator.prepare(command);
    await this.sendPrepared([prepared]);
    return prepared.command.command_id;
  }

  /**
   * Validate every command, then enqueue them all in pipelined batches; resolves to
   * how many were handed to Redis. Throws InvalidCommand naming the first bad
   * command's position and field before anything is sent.
   */
  async enqueueMany(
    commands: Iterable<CheckoutCommand>,
    options: EnqueueManyOptions = {},
  ): Promise<number> {
    return this.sendPrepared(this.prepareAll(commands), options.runId);
  }

  /** Validate without sending (throws InvalidCommand naming the position). */
  prepareAll(commands: Iterable<CheckoutCommand>): Prepared[] {
    const prepared: Prepared[] = [];
    let position = 0;
    for (const command of commands) {
      try {
        prepared.push(this.validator.prepare(command));
      } catch (error) {
        throw error instanceof InvalidCommand ? error.at(position) : error;
      }
      position += 1;
    }
    return prepared;
  }

  /** Enqueue already validated commands; throws EnqueueFailed saying how many went. */
  async sendPrepared(prepared: readonly Prepared[], runId?: string): Promise<number> {
    if (runId) checkRunId(runId);
    if (this.shards.length > 1) await this.checkShards();
    let sent = 0;
    const perRoundTrip = SCRIPT_BATCH * PIPELINE_CALLS;
    for (let start = 0; start < prepared.length; start += perRoundTrip) {
      const round = prepared.slice(start, start + perRoundTrip);
      // Each shard's part in input order: a session's commands all go to one shard.
      const parts: Prepared[][] = this.shards.map(() => []);
      for (const item of round) {
        const { session_id: sessionId, command_id: commandId } = item.command;
        parts[shardFor(sessionId, commandId, this.shards.length)]!.push(item);
      }
      for (const [shard, part] of parts.entries()) {
        if (part.length) sent += await this.roundTrip(shard, part, runId, sent);
      }
    }
    return sent;
  }

  /** Close the Redis connections once pending replies are in. */
  async close(): Promise<void> {
    await Promise.all(this.shards.map((redis) => redis.quit()));
  }

  /** Record each shard's place on first use; refuse a list the shards disagree with. */
  private async checkShards(): Promise<void> {
    if (this.shardsChecked) return;
    const key = `${this.prefix}:shard`;
    for (const [shard, redis] of this.shards.entries()) {
      const want = `${shard}/${this.shards.length}`;
      await redis.set(key, want, "NX");
      const found = await redis.get(key);
      if (found !== null && found !== want) {
        throw new ShardMismatch(
          `the shard list disagrees with the shards: it has shard ${shard} of ${this.shards.length}, ` +
            `but that Redis records being shard ${found.replace("/", " of ")}`,
        );
      }
    }
    this.shardsChecked = true;
  }

  private async roundTrip(shard: number, chunk: Prepared[], runId: string | undefined, sent: number) {
    const pipeline = this.shards[shard]!.pipeline() as unknown as ScriptRunner & {
      script(subcommand: "LOAD", lua: string): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    // A pipeline is not atomic: with the script forgotten, another client may load it
    // while Redis is still reading this one, so its first calls answer NOSCRIPT (ioredis
    // then sends them again, as EVAL) after later calls ran: the same session's
    // commands would be sequenced out of order. Loading the script first, in the same
    // round trip, leaves none to fail (worker/delivery/journal.py does the same).
    const loadsFirst = chunk.length > SCRIPT_BATCH;
    if (loadsFirst) pipeline.script("LOAD", this.lua);
    const sizes: number[] = [];
    for (let start = 0; start < chunk.length; start += SCRIPT_BATCH) {
      const batch = chunk.slice(start, start + SCRIPT_BATCH);
      pipeline[SCRIPT_COMMAND](...this.enqueueArgs(batch, runId, shard));
      sizes.push(batch.length);
    }
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      throw new EnqueueFailed(sent, error);
    }
    let done = 0;
    for (const [index, [error]] of (replies ?? []).slice(loadsFirst ? 1 : 0).entries()) {
      if (error) throw new EnqueueFailed(sent + done, error);
      done += sizes[index] ?? 0;
    }
    return done;
  }

  /** ARGV of one `enqueue` (or `enqueue_batched`) call to shard `shard`, built from
   * protocol.json's argument names as worker/delivery/journal.py `Journal.enqueue_args`
   * builds it: with several shards its `shard_tag` starts every jid the call makes. */
  enqueueArgs(batch: readonly Prepared[], runId?: string, shard = 0): string[] {
    const op = this.perMessage > 1 ? "enqueue_batched" : "enqueue";
    const values: Record<string, string | number> = {
      queue: this.queue,
      visibility_ms: this.visibilityMs,
      run_id: runId ?? "",
      order_ttl_s: this.protocol.limit("order_ttl_seconds"),
      run_ttl_s: this.protocol.limit("run_ttl_seconds"),
      shard_tag: shardTag(shard, this.shards.length),
    };
    if (this.perMessage > 1) values.per_message = this.perMessage;
    const rows = batch.map(({ command, text }) => ({
      command: text,
      command_id: command.command_id,
      session_id: command.session_id ?? "",
    }));
    return [op, this.prefix, ...this.protocol.arguments(op, values, rows)];
  }
}

function redisUrls(options: ProducerOptions): string[] {
  if (options.redisUrls?.length) return options.redisUrls;
  if (options.redisUrl) return [options.redisUrl];
  const listed = (process.env.CHECKOUT_REDIS_URLS ?? "")
    .split(",")
    .map((url) => url.trim())
    .filter(Boolean);
  if (listed.length) return listed;
  return [process.env.CHECKOUT_REDIS_URL ?? "redis://127.0.0.1:6379/0"];
}
