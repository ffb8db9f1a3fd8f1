/**
 * Which Redis shard a command goes to, as worker/delivery/shards.py computes it (a test
 * pins both on fixed ids): the first 8 bytes of SHA-256(session id, UTF-8), big-endian,
 * modulo the number of shards. A create_session without a session_id is routed by the id
 * the worker will give it: uuid5(SESSION_ID_NAMESPACE, command_id).
 */
import { createHash } from "node:crypto";

/** worker/service/apply.py SESSION_ID_NAMESPACE. */
export const SESSION_ID_NAMESPACE = "0d5ad0c3-5e55-4f4e-9b1e-3c0c5e55a1d0";

/** The shard (0 to shards - 1) of the session `sessionId`. */
export function shardOf(sessionId: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be at least 1: ${shards}`);
  const digest = createHash("sha256").update(sessionId, "utf8").digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(shards));
}

/** The id of the session a create without session_id makes (Python's uuid.uuid5). */
export function sessionIdFor(commandId: string): string {
  const namespace = Buffer.from(SESSION_ID_NAMESPACE.replaceAll("-", ""), "hex");
  const hash = createHash("sha1").update(namespace).update(commandId, "utf8").digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The shard of a command: its session's (or the session its create makes). */
export function shardFor(sessionId: string | undefined | null, commandId: string, shards: number): number {
  if (shards === 1) return 0;
  return shardOf(sessionId ? sessionId : sessionIdFor(commandId), shards);
}

/**
 * The tag of shard `shard` of `shards`, as worker/delivery/jids.py makes it: "" for a
 * deployment of one Redis, else `s<shard>`. The enqueue script starts every jid it makes
 * with it (`<tag>:<ms>-<n>`), so jids, task ids and dead-letter ids are unique across shards.
 */
export function shardTag(shard: number, shards: number): string {
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new RangeError(`shard ${shard} is not one of ${shards} (0 to ${shards - 1})`);
  }
  return shards === 1 ? "" : `s${shard}`;
}
