-- The checkout pipeline's Redis side: one script, one operation per call.
--
--   FCALL checkout_<hash> 0 <op> <prefix> <args...>   (Redis 7: a Functions library)
--   EVALSHA <sha> 0 <op> <prefix> <args...>          (any Redis from 6.2: a script)
--
-- Every producer (Python, TypeScript, anything that speaks Redis) enqueues through
-- `enqueue` (or `enqueue_batched`: several commands a message, for bulk), so a command
-- gets the same Celery message, per-session sequence number and journal entry
-- whatever language sent it. Workers call `claim`, `finish` and `retry`; one worker
-- at a time calls `reap`. Each call is atomic: that is what closes kombu's SIGKILL
-- window (the journal entry is written with the message and removed only with the
-- result event) and keeps the ordering gate race-free.
--
-- Every key, hash field and operation argument is named in `protocol.json`, the spec
-- Python (`worker/delivery/protocol.py`) and TypeScript (`clients/typescript`) build
-- their calls from; each operation below names its arguments once, at its top, in the
-- spec's order (`tests/unit/test_protocol.py` holds all three to it).
--
-- Keys (all under <prefix>; a single Redis, not a cluster: keys are derived here):
--   j:<jid>        hash   journal entry of one delivery chain (see `new_entry`); a jid
--                         is <ms>-<n> (Redis's clock, the `jid` counter), or with several
--                         shards <shard tag>:<ms>-<n> (`jid_prefix`)
--   due            zset   jid -> ms when the reaper should look at the entry again
--                         (waiting for a retry, parked; never queued or running)
--   queued:<queue> zset   jid -> queue position, for entries whose message went on the
--                         queue, from then until the command finishes, parks or waits
--                         for a retry (see `reap_lost`); queues: set of the queues that
--                         have had any; qmark:<queue> hash, the reaper's mark
--   s:<session>    hash   next (last sequence given out), last (its jid), xa (ms its
--                         expiry was last set, see `enqueue_commands`); sessions from
--                         before `pj` also have j:<n> (jid holding sequence n), p:<n> (jid
--                         parked waiting for n-1) and done (highest sequence finished)
--   qpos:<queue>   string pushes to the queue so far (the commands of one batched
--                         message share its position)
--   workers        zset   worker process id -> last heartbeat ms
--   busy           hash   worker process id -> jid its last heartbeat (`beat`) named
--                         (a claim does not write it: see `reap_claimed_by`)
--   dlq            zset   dead-letter id -> ms;  dlq:<id> hash, the entry;
--                         dlqevicted string, entries evicted (`evict_dead_letters`)
--   run:<run>      hash   command_id -> outcome;  run:<run>:n hash, counts;
--   run:<run>:ex   list   "<outcome> <command_id>" of the first failures
--   c:<session>    string the session item as the store last wrote it
--                         (`worker.delivery.session_copies`): `claim` reads it and
--                         `finish` writes it when the worker asks, so the store needs no
--                         round trip of its own
-- Times are Redis's own clock (TIME), so producers' and workers' clocks never matter;
-- `claim` takes the worker's reading of it (its clock plus the offset its heartbeats
-- measure), which saves a TIME per command where a few ms of error change nothing.

-- The call's arguments (<op> <prefix> <args...>) and key prefix, set by `run` below.
local argv, prefix
local TASK = 'checkout.apply_command'
local BATCH_TASK = 'checkout.apply_commands' -- args [[cmd, ...], [jid, ...]]
local PENDING, APPLIED = 'pending', 'applied'
local EXAMPLES = 20
local MAX_COMMAND_BYTES = 400000 -- DynamoDB's item limit (protocol.json limits)
local RUN_OUTCOMES_TTL = 86400 -- protocol.json limits.run_outcomes_ttl_seconds

local function key(...)
  return prefix .. ':' .. table.concat({ ... }, ':')
end

-- The named fields of a hash: fields(k, 'st', 'own') -> { st = ..., own = ... }, with
-- false for a missing field (HMGET's nil), as `redis.call` gives it.
local function fields(k, ...)
  local names = { ... }
  local values = redis.call('HMGET', k, unpack(names))
  local named = {}
  for i, name in ipairs(names) do named[name] = values[i] end
  return named
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A JSON string literal; ids made of safe characters (most are) skip cjson.
local function quoted(text)
  if string.find(text, '^[%w%-_.:]*$') then return '"' .. text .. '"' end
  return cjson.encode(text)
end

-- What Celery logs instead of the arguments: the command id, never the body.
local function argsrepr(cid)
  if string.find(cid, '^[%w%-_.:]*$') then return '"(command ' .. cid .. ')"' end
  return cjson.encode('(command ' .. cid .. ')')
end

-- A Celery (protocol 2) task message as kombu's Redis transport stores it. Its content
-- type is the pipeline's own (`worker.runtime.serialization`): the worker decodes the
-- body with plain JSON, never kombu's `__type__` markers. `args` is
-- the JSON of the task's positional and keyword arguments, `[...],{...}`, with command
-- texts embedded as sent: re-encoding them in Lua would round big numbers. `queue` and
-- `repr` are already JSON string literals (`quoted`, `argsrepr`). The header
-- `checkout_journaled` tells the worker's transport that the journal covers the message
-- (`worker.transport.JournaledQoS`: no kombu unacked copy in Redis).
-- `task_id` is what Celery and Flower know the task by, `tag` this delivery of it.
local function celery_message(task, args, repr, queue, task_id, tag)
  local body = '[' .. args .. ',{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
  local id = quoted(task_id)
  return '{"body":' .. cjson.encode(body) ..
    ',"content-encoding":"utf-8","content-type":"application/vnd.checkout.command+json"' ..
    ',"headers":' ..
    '{"lang":"py","task":"' .. task .. '","id":' .. id ..
    ',"shadow":null,"eta":null,"expires":null,"group":null,"group_index":null' ..
    ',"retries":0,"timelimit":[null,null],"root_id":' .. id .. ',"parent_id":null' ..
    ',"argsrepr":' .. repr ..
    ',"kwargsrepr":"{}","origin":"checkout","ignore_result":true' ..
    ',"replaced_task_nesting":0,"stamped_headers":null,"stamps":{}' ..
    ',"checkout_journaled":true}' ..
    ',"properties":{"correlation_id":' .. id .. ',"reply_to":null,"delivery_mode":2' ..
    ',"delivery_info":{"exchange":"","routing_key":' .. queue ..
    '},"priority":0,"body_encoding":"utf-8","delivery_tag":' .. quoted(tag) .. '}}'
end

-- The Celery task id of a journal entry: one per command however often it is delivered,
-- so a parked, retried or re-pushed command is one task in Flower, whose last event
-- says its outcome. An entry adopted from a plain `send_task` ('T' .. its task id,
-- `claim`) keeps that task's id.
local function task_id_of(jid)
  if string.sub(jid, 1, 1) == 'T' then return string.sub(jid, 2) end
  if string.sub(jid, 1, 1) == 's' then -- tagged: adopted ones are <tag>:T<task id>
    local adopted = string.match(jid, '^s%d+:T(.*)$')
    if adopted then return adopted end
  end
  return jid
end

-- The message of one command: `checkout.apply_command(cmd, jid=jid)`.
local function envelope(cmd, cid, jid, queue, tag)
  return celery_message(TASK, '[' .. cmd .. '],{"jid":' .. quoted(jid) .. '}', argsrepr(cid), queue,
    task_id_of(jid), tag)
end

-- The message of several: `checkout.apply_commands([cmd, ...], [jid, ...])`. Its
-- `argsrepr` only counts them (no bodies; ids would make headers long).
local function batch_envelope(cmds, jids, queue, tag)
  local args = '[[' .. table.concat(cmds, ',') .. '],["' .. table.concat(jids, '","') .. '"]],{}'
  return celery_message(BATCH_TASK, args, '"(' .. #cmds .. ' commands)"', queue, tag, tag)
end

-- Put the entry's command on its queue (again), listed in `queued:<queue>` (what the
-- reaper checks for lost messages, see `reap_lost`) and out of `due`.
-- `front` puts it next in line: a woken successor has waited already. It takes no new
-- position: it gets the last one given out and is marked `qf`, so claiming it moves
-- `qtaken` nowhere (otherwise every message queued behind it would look passed, and
-- the reaper would push copies of a whole backlog), and it counts as passed only once
-- a message enqueued after it is claimed.
local function push(jid, now, visibility, front)
  local e = key('j', jid)
  local entry = fields(e, 'cmd', 'cid', 'q')
  local qpos, tag
  if front then
    qpos = tonumber(redis.call('GET', key('qpos', entry.q)) or '0')
    tag = jid .. '.' .. qpos .. 'f'
  else
    qpos = redis.call('INCR', key('qpos', entry.q))
    tag = jid .. '.' .. qpos
    redis.call('SADD', key('queues'), entry.q)
  end
  redis.call('HSET', e, 'st', 'queued', 'own', '', 'qpos', qpos, 'qf', front and 1 or 0)
  local message = envelope(entry.cmd, entry.cid, jid, quoted(entry.q), tag)
  redis.call(front and 'RPUSH' or 'LPUSH', entry.q, message)
  redis.call('ZADD', key('queued', entry.q), qpos, jid)
  redis.call('ZREM', key('due'), jid)
end

-- What every jid the call makes starts with: '' in a deployment of one Redis, or
-- '<shard tag>:' with several, the tag `s<K>` its caller names (producers route per
-- shard, workers serve one: `worker.delivery.jids`), so that no two shards make the
-- same jid (each has its own clock and counter). nil: not a tag.
local function jid_prefix(shard_tag)
  if shard_tag == '' then return '' end
  if not string.find(shard_tag, '^s%d+$') then return nil end
  return shard_tag .. ':'
end

local function new_jid(now, tag_prefix)
  return tag_prefix .. now .. '-' .. redis.call('INCR', key('jid'))
end

local function new_entry(jid, cmd, cid, sid, queue, run, now)
  redis.call('HSET', key('j', jid), 'cmd', cmd, 'cid', cid, 'sid', sid, 'q', queue,
    'run', run, 'enq', now, 'att', 0, 'dlv', 0, 'st', 'new', 'own', '', 'qf', 0)
end

-- A run's summary (counts, first failures) lives <ttl>; its per-command outcomes at
-- most a day, like everything else per command: resuming a run later than that leans
-- on the commands' idempotency (a finished command is replayed, not applied twice).
local function keep_run(run, ttl)
  redis.call('EXPIRE', key('run', run), math.min(ttl, RUN_OUTCOMES_TTL))
  redis.call('EXPIRE', key('run', run, 'n'), ttl)
  redis.call('EXPIRE', key('run', run, 'ex'), ttl)
end

-- A command's outcome in its run. The run's keys got their lifetimes when the command
-- was enqueued: an outcome recorded after the per-command hash expired (a delivery more
-- than a day late) is not recorded, so no key is ever left without an expiry.
local function record_outcome(run, cid, outcome)
  local r, n, ex = key('run', run), key('run', run, 'n'), key('run', run, 'ex')
  local previous = redis.call('HGET', r, cid)
  if not previous or previous == outcome then return end
  redis.call('HSET', r, cid, outcome)
  if previous ~= PENDING then redis.call('HINCRBY', n, previous, -1) end
  if outcome ~= PENDING then redis.call('HINCRBY', n, outcome, 1) end
  if outcome ~= PENDING and outcome ~= APPLIED and redis.call('LLEN', ex) < EXAMPLES then
    redis.call('RPUSH', ex, outcome .. ' ' .. cid)
  end
end

local function alive(worker, now, heartbeat_timeout)
  local beat = redis.call('ZSCORE', key('workers'), worker)
  return beat and tonumber(beat) >= now - heartbeat_timeout
end

local function applying(worker, jid)
  return worker ~= '' and redis.call('HGET', key('busy'), worker) == jid
end

local function release(worker, jid)
  if applying(worker, jid) then redis.call('HDEL', key('busy'), worker) end
end

-- A running entry is being applied by its owner while the owner heartbeats and either
-- its last beat named the entry, or it claimed the entry less than a heartbeat
-- timeout ago (its beats name it from the next one on).
local function applying_now(owner, jid, claimed_at, now, heartbeat_timeout)
  if not alive(owner, now, heartbeat_timeout) then return false end
  return applying(owner, jid) or (tonumber(claimed_at) or 0) > now - heartbeat_timeout
end

-- A session's ordering state as one enqueue call goes through its commands: read once
-- (the last sequence number given out and its jid), written once at the end.
local function session_order(sessions, s)
  local order = sessions[s]
  if order then return order end
  local state = redis.call('HMGET', s, 'next', 'last', 'xa')
  order = { next = tonumber(state[1] or '0'), last = state[2], expiry_at = tonumber(state[3]) }
  if not order.last then
    -- Written by a script from before `last`: its jid is under `j:<n>`, if anywhere.
    order.last = order.next > 0 and redis.call('HGET', s, 'j:' .. order.next) or ''
  end
  sessions[s] = order
  return order
end

-- enqueue <queue> <visibility ms> <run> <order ttl s> <run ttl s> <shard tag>
--         (<cmd> <cid> <sid>)...
-- <shard tag>: '' with one Redis, else `s<K>` for shard K, which every jid the call
-- makes starts with (`jid_prefix`). A command with a session gets that session's next
-- sequence number. With a run, a
-- command the run already has a final outcome for is skipped (a resumed run applies
-- nothing twice). Returns one jid per command, '' for a skipped one.
-- <visibility ms> is no longer read here (queued entries are listed by position, not
-- given a due time); producers still send it, so their calls stay valid.
-- The hot path of bulk sends: counters are taken once per call and the queue, the
-- due set and each session's expiry are written once per call, not per command.
--
-- enqueue_batched <queue> <visibility ms> <run> <order ttl s> <run ttl s> <per message>
--                 <shard tag> (<cmd> <cid> <sid>)...
-- The same, but the call's commands that are not skipped go in consecutive groups of
-- up to <per message> to one `checkout.apply_commands` message each, which amortises
-- Celery's per-message cost (bulk). Each command still has its own journal entry and
-- sequence number; the entries of one message share its queue position (qpos), so the
-- first `claim` of the message raises qtaken past all of them (see `claim` for how the
-- rest are kept from the reaper while the message is worked through).
local function enqueue_commands(queue, run, order_ttl, run_ttl, shard_tag, first, per_message)
  local count = (#argv - first + 1) / 3
  -- A caller from before <shard tag> sends one argument less: refused, not misread.
  if count % 1 ~= 0 then
    return redis.error_reply('enqueue: expected (command, command_id, session_id) triples ' ..
      'after <shard tag> (protocol.json)')
  end
  local tag_prefix = jid_prefix(shard_tag)
  if not tag_prefix then
    return redis.error_reply("enqueue: <shard tag> is not '' or s<K>")
  end
  -- Producers refuse such run ids (`schemas/ids.py`); this is the backstop: `rk2:ex`
  -- would write into run rk2's keys.
  if run ~= '' and (#run > 128 or not string.find(run, '^[%w][%w_.-]*$')) then
    return redis.error_reply('enqueue: run id is not 1-128 of letters, digits, _ . -')
  end
  -- Producers refuse commands past CHECKOUT_MAX_COMMAND_BYTES; this is the backstop
  -- for a client that skips them: nothing of a call with a command past DynamoDB's
  -- item limit is enqueued.
  for i = first, #argv, 3 do
    if #argv[i] > MAX_COMMAND_BYTES then
      return redis.error_reply('enqueue: command ' .. ((i - first) / 3) .. ' is ' .. #argv[i] ..
        ' bytes, more than ' .. MAX_COMMAND_BYTES)
    end
  end
  local now = now_ms()
  -- Positions for every message the call may push (skipped commands leave gaps: harmless,
  -- the reaper only compares positions).
  local positions = per_message and math.ceil(count / per_message) or count
  local first_jid = redis.call('INCRBY', key('jid'), count) - count
  local first_qpos = redis.call('INCRBY', key('qpos', queue), positions) - positions
  local r = key('run', run)
  -- The run's outcomes of the call's commands, read at once and written at once.
  local outcomes, pending, counted = {}, {}, {}
  if run ~= '' then
    local cids = {}
    for i = first + 1, #argv, 3 do cids[#cids + 1] = argv[i] end
    for from = 1, #cids, 1000 do
      local got = redis.call('HMGET', r, unpack(cids, from, math.min(from + 999, #cids)))
      for k, value in ipairs(got) do outcomes[from + k - 1] = value end
    end
  end
  local jids, messages, listed, sessions = {}, {}, {}, {}
  local queue_json = quoted(queue)
  local new_in_run, kept = 0, 0
  local group, group_jids = {}, {}
  for n = 1, count do
    local i = first + 3 * (n - 1)
    local cmd, cid, sid = argv[i], argv[i + 1], argv[i + 2] -- command, command_id, session_id
    local outcome = outcomes[n] or (counted[cid] and PENDING)
    if outcome and outcome ~= PENDING then
      jids[n] = ''
    else
      local jid = tag_prefix .. now .. '-' .. (first_jid + n)
      local qpos = first_qpos + n
      if per_message then
        qpos = first_qpos + math.floor(kept / per_message) + 1
        kept = kept + 1
      end
      local seq, predecessor = '', ''
      if sid ~= '' then
        local order = session_order(sessions, key('s', sid))
        order.next = order.next + 1
        seq, predecessor, order.last = order.next, order.last, jid
      end
      redis.call('HSET', key('j', jid), 'cmd', cmd, 'cid', cid, 'sid', sid, 'q', queue,
        'run', run, 'enq', now, 'att', 0, 'dlv', 0, 'st', 'queued', 'own', '', 'qpos', qpos,
        'qf', 0, 'seq', seq, 'pj', predecessor)
      if per_message then
        group[#group + 1], group_jids[#group_jids + 1] = cmd, jid
        if #group == per_message then
          messages[#messages + 1] = batch_envelope(group, group_jids, queue_json,
            group_jids[1] .. '.' .. qpos)
          group, group_jids = {}, {}
        end
      else
        messages[#messages + 1] = envelope(cmd, cid, jid, queue_json, jid .. '.' .. qpos)
      end
      listed[#listed + 1] = qpos
      listed[#listed + 1] = jid
      if run ~= '' and not outcome then
        pending[#pending + 1], pending[#pending + 2] = cid, PENDING
        counted[cid] = true -- the same command twice in one call: counted once
        new_in_run = new_in_run + 1
      end
      jids[n] = jid
    end
  end
  if #group > 0 then
    messages[#messages + 1] = batch_envelope(group, group_jids, queue_json,
      group_jids[1] .. '.' .. (first_qpos + math.ceil(kept / per_message)))
  end
  -- In slices: Lua's unpack has a limit, and a caller may send big batches.
  for from = 1, #messages, 1000 do
    redis.call('LPUSH', queue, unpack(messages, from, math.min(from + 999, #messages)))
  end
  for from = 1, #listed / 2, 1000 do
    local to = math.min(from + 999, #listed / 2)
    redis.call('ZADD', key('queued', queue), unpack(listed, 2 * from - 1, 2 * to))
  end
  if #listed > 0 then redis.call('SADD', key('queues'), queue) end
  -- A session's expiry is renewed once per 1% of its lifetime, not on every call
  -- (`xa`: when it was last set): it lives between 99% and 100% of <order ttl> after
  -- its last command, never longer.
  local renew_after = order_ttl * 10 -- ms: 1% of <order ttl s>
  for s, order in pairs(sessions) do
    if order.expiry_at and now - order.expiry_at < renew_after then
      redis.call('HSET', s, 'next', order.next, 'last', order.last)
    else
      redis.call('HSET', s, 'next', order.next, 'last', order.last, 'xa', now)
      redis.call('EXPIRE', s, order_ttl)
    end
  end
  if run ~= '' then
    for from = 1, #pending, 2000 do
      redis.call('HSET', r, unpack(pending, from, math.min(from + 1999, #pending)))
    end
    if new_in_run > 0 then redis.call('HINCRBY', key('run', run, 'n'), 'sent', new_in_run) end
    keep_run(run, run_ttl)
  end
  return jids
end

local function enqueue()
  local queue, visibility_ms, run_id, order_ttl_s, run_ttl_s, shard_tag = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8]
  return enqueue_commands(queue, run_id, tonumber(order_ttl_s), tonumber(run_ttl_s), shard_tag, 9,
    nil)
end

local function enqueue_batched()
  local queue, visibility_ms, run_id, order_ttl_s, run_ttl_s, per_message, shard_tag = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9]
  per_message = tonumber(per_message)
  if not per_message or per_message < 1 or per_message % 1 ~= 0 then
    return redis.error_reply('enqueue_batched: <per message> must be a positive integer')
  end
  return enqueue_commands(queue, run_id, tonumber(order_ttl_s), tonumber(run_ttl_s), shard_tag,
    10, per_message)
end

-- The ordering gate: a command waits while the command before it in its session is
-- still journaled. That one will get an outcome (applied, rejected or dead-lettered),
-- and its `finish` wakes the waiting one (`wake` in its entry). One that is not
-- journaled (finished, or lost with Redis data) holds nothing. Entries from before
-- `pj` find their predecessor in the session hash (`j:<n>`, `done`).
local function waits_for_predecessor(entry, seq)
  if entry.pj then
    return entry.pj ~= '' and redis.call('EXISTS', key('j', entry.pj)) == 1
  end
  local s = key('s', entry.sid)
  return tonumber(redis.call('HGET', s, 'done') or '0') < seq - 1
    and redis.call('HEXISTS', s, 'j:' .. (seq - 1)) == 1
end

-- The session's copy for a claim that asks for it (`with_copy` '1'): (text or '', the
-- jid of the finish that wrote it or false). `finish` keeps it as "<jid>\n<text>";
-- one written by the store itself (`RedisSessionCopies`) is the text alone. The
-- first of a session's sequence has nothing to read: a copy outlives its session's
-- order state by far less than a day.
local function session_copy(entry, seq, with_copy)
  if with_copy ~= '1' or entry.sid == '' or seq == 1 then return '', false end
  local kept = redis.call('GET', key('c', entry.sid))
  if not kept then return '', false end
  local newline = string.find(kept, '\n', 1, true)
  if not newline or string.sub(kept, 1, 1) == '{' then return kept, false end
  return string.sub(kept, newline + 1), string.sub(kept, 1, newline - 1)
end

-- Park <jid> until its predecessor finishes (which pushes it to the front of its
-- queue), and look at it again a visibility timeout from now in case that is missed.
local function park(jid, entry, seq, now, visibility)
  redis.call('HSET', key('j', jid), 'st', 'parked', 'own', '')
  if entry.pj then
    local predecessor = key('j', entry.pj)
    redis.call('HSET', predecessor, 'wake', jid) -- it exists: just checked
    -- A running predecessor may have been offered `finish`'s short way by its claim:
    -- off its listing, into `due`, so that finish finds it unlisted and reads the
    -- entry (and this `wake`); the reaper looks after it from `due` meanwhile
    -- (`reap_due`: still being applied, or pushed again). One not claimed yet stays
    -- listed, where `reap_lost` finds its message if that is lost; its claim will see
    -- `wake` and offer no short way.
    local its = fields(predecessor, 'q', 'st')
    if its.st == 'running' and redis.call('ZREM', key('queued', its.q), entry.pj) == 1 then
      redis.call('ZADD', key('due'), now + visibility, entry.pj)
    end
  else
    redis.call('HSET', key('s', entry.sid), 'p:' .. seq, jid)
  end
  redis.call('ZADD', key('due'), now + visibility, jid)
  redis.call('ZREM', key('queued', entry.q), jid)
end

-- claim <jid> <worker> <visibility ms> <heartbeat timeout ms> <max deaths>
--       <cmd> <cid> <queue> (the delivered command: journals a message sent around `enqueue`;
--       for a journaled message <cmd> is '' and <cid> the message's command_id, or '')
--       <with copy> ('1': return the session's copy too)
--       <clock ms> (the caller's reading of Redis's clock, see below; '' or 0: TIME)
--       [<jid>...] (the commands after this one in its batched message, see below)
-- -> {'go', deliveries, failed attempts, enqueued ms, now ms, command text, copy or '',
--     queue or '', run, cid (for `finish`'s short way)}
--    | {'skip'} | {'busy'} | {'park'} | {'forged'}
--    | {'dead', d, a, enqueued ms, now ms}
-- The hot path: one read of the entry, the predecessor's existence, one write of the
-- entry, and the session's copy if asked. No `busy` mark: the worker's next beat names
-- the entry, and a worker that dies before it is found by `reap_claimed_by`, from the
-- entry's owner. No TIME: the worker sends
-- its estimate of Redis's clock (its own plus the offset its last heartbeat measured,
-- `Journal.claim`); it stamps the claim (`at`, a grace of a heartbeat timeout) and the
-- metrics, where a few ms of error change nothing. The entry stays listed in `queued:<queue>`
-- until it finishes (the reaper tells a running entry from a lost one by its state),
-- so `due` is not written per command.
-- The fields a claim reads of an entry.
local function claim_fields(e)
  return fields(e, 'st', 'own', 'at', 'cid', 'sid', 'seq', 'pj', 'dlv', 'att', 'q', 'enq', 'qf',
    'cmd', 'run', 'wake')
end

-- The claim of the entry of <jid> (`entry`, read by `claim_fields`) by <worker> at
-- <now>, once the message is known to be its delivery: busy, parked behind its
-- predecessor, dead (it killed its workers too often) or go (see `claim`).
local function claim_entry(jid, entry, worker, visibility, heartbeat_timeout, max_deaths,
                           with_copy, now, adopted)
  -- An entry written by a script from before `qf` (every entry has had one since)
  -- may be in `due`, where running entries no longer go.
  if not entry.qf then redis.call('ZREM', key('due'), jid) end
  if entry.st == 'running' and entry.own ~= worker
      and applying_now(entry.own, jid, entry.at, now, heartbeat_timeout) then
    return { 'busy' }
  end
  local seq = tonumber(entry.seq)
  local copy, copied_by = session_copy(entry, seq, with_copy)
  -- A copy its predecessor's finish wrote says that predecessor is done (the same
  -- call deleted its entry): no need to look for the entry.
  local after_predecessor = entry.pj and entry.pj ~= '' and copied_by == entry.pj
  if seq and seq > 1 and not after_predecessor and waits_for_predecessor(entry, seq) then
    park(jid, entry, seq, now, visibility)
    return { 'park' }
  end
  local deliveries, attempts = tonumber(entry.dlv), tonumber(entry.att)
  -- Deliveries that ended without an outcome or a recorded failure: the process died.
  local enq = tonumber(entry.enq) or now
  if deliveries - attempts >= max_deaths then return { 'dead', deliveries, attempts, enq, now } end
  redis.call('HSET', key('j', jid), 'st', 'running', 'own', worker, 'at', now, 'dlv',
    deliveries + 1)
  -- An adopted entry is listed nowhere `reap_claimed_by` looks: named at once, so a
  -- worker killed mid-command is found by its stale heartbeat (`reap`).
  if adopted then redis.call('HSET', key('busy'), worker, jid) end
  -- The journal's command, not the message's: the worker applies this text, and the
  -- store decides on the copy (asked for with `with_copy`) without a round trip.
  -- Its queue, run and command id let `finish` take the short way, offered for a
  -- listed entry of the current layout that no successor waits on yet.
  local short = not adopted and entry.pj and entry.qf and not entry.wake
  return { 'go', deliveries + 1, attempts, enq, now, entry.cmd, copy, short and entry.q or '',
    entry.run or '', entry.cid or '' }
end

local function claim()
  local jid, worker, visibility_ms, heartbeat_timeout_ms, max_deaths, adopt_command, adopt_command_id, adopt_queue, with_copy, clock_ms = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], argv[11], argv[12]
  local first_rest_jid = 13
  local e = key('j', jid)
  local entry = claim_fields(e)
  local now = tonumber(clock_ms)
  if not now or now <= 0 then now = now_ms() end
  if not entry.st then
    -- Finished already (this is a duplicate delivery), or never journaled.
    if adopt_command == '' then return { 'skip' } end
    new_entry(jid, adopt_command, adopt_command_id, '', adopt_queue, '', now)
    entry = { st = 'new', own = '', sid = '', seq = false, dlv = '0', att = '0', q = adopt_queue,
      enq = now, qf = '0', cmd = adopt_command }
  end
  -- The journal, not the message, says what a delivery is: a message naming a jid
  -- whose entry holds another command (a forged `jid`) is not that command's delivery.
  -- The worker dead-letters it as forged; the entry is left as it was.
  if adopt_command == '' and adopt_command_id ~= '' and entry.cid ~= adopt_command_id then
    return { 'forged' }
  end
  -- The rest of a batched message: listed at a position this message's claim shows
  -- as taken off the queue, so the reaper would soon take them for lost and push
  -- copies while this worker is on its way to them. They are listed again as if
  -- queued just now (the last position given out, as a woken successor is); the
  -- worker renews that before a visibility timeout passes. If it dies, they come back
  -- through the reaper then, or with the whole message through kombu. XX: the
  -- finished ones stay out.
  if #argv >= first_rest_jid then
    local last = tonumber(redis.call('GET', key('qpos', entry.q)) or '0')
    local renewed = {}
    for i = first_rest_jid, #argv do
      renewed[#renewed + 1] = last
      renewed[#renewed + 1] = argv[i]
    end
    redis.call('ZADD', key('queued', entry.q), 'XX', unpack(renewed))
  end
  return claim_entry(jid, entry, worker, tonumber(visibility_ms), tonumber(heartbeat_timeout_ms),
    tonumber(max_deaths), with_copy, now, adopt_command ~= '')
end

-- The journal entry a message taken off <queue> is the delivery of, or nil: the
-- message must be byte for byte the one `enqueue` or `push` writes for that entry
-- (its delivery tag names the jid and position), so nothing a message claims about
-- itself decides anything. Others (batched, adopted, restored by kombu, forged) are
-- claimed the ordinary way, by the worker, after their body is read.
local function delivered_entry(message, queue)
  local jid, position, front = string.match(message, '"delivery_tag":"([^"]*)%.(%d+)(f?)"}}$')
  if not jid then return nil end
  local entry = claim_fields(key('j', jid))
  if not entry.cmd or entry.q ~= queue then return nil end
  local tag = jid .. '.' .. position .. front
  if envelope(entry.cmd, entry.cid, jid, quoted(queue), tag) ~= message then return nil end
  return jid, entry
end

-- take <worker> <visibility ms> <heartbeat timeout ms> <max deaths> <with copy>
--      <clock ms> (<queue key>)...
-- BRPOP's choice without the wait: the message next in line on the first of the
-- queue keys that has one, and in the same call its claim (as `claim` for a
-- journaled message) when it is the delivery of a journal entry (`delivered_entry`).
-- A worker under a backlog takes and claims in one round trip instead of two; with
-- nothing queued it waits on BRPOP (`worker.runtime.transport`).
-- -> {} (every key empty) | {queue key, message} (claim it as usual)
--    | {queue key, message, jid, <claim's reply>...}
local function take()
  local worker, visibility_ms, heartbeat_timeout_ms, max_deaths, with_copy, clock_ms = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8]
  local first_queue_key = 9
  local message, from
  for i = first_queue_key, #argv do
    -- The first key (the interactive queue) is nearly always the one: the rest are
    -- looked at only when one EXISTS says any of them holds something.
    if i == first_queue_key + 1 and redis.call('EXISTS', unpack(argv, i, #argv)) == 0 then
      return {}
    end
    message = redis.call('RPOP', argv[i])
    if message then
      from = argv[i]
      break
    end
  end
  if not message then return {} end
  local reply = { from, message }
  local jid, entry = delivered_entry(message, from)
  if not jid then return reply end
  local now = tonumber(clock_ms)
  if not now or now <= 0 then now = now_ms() end
  local claimed = claim_entry(jid, entry, worker, tonumber(visibility_ms),
    tonumber(heartbeat_timeout_ms), tonumber(max_deaths), with_copy, now, false)
  reply[3] = jid
  for _, value in ipairs(claimed) do reply[#reply + 1] = value end
  return reply
end

-- finish <jid> <worker> <stream> <maxlen> <event json> <outcome> <visibility ms> <run ttl s>
--        <copy session> <copy text> <copy ttl s> (the session copy to keep; '' for none)
--        <queue> <run> <cid> (the entry's, as its claim returned them; <queue> '' when
--        the claim did not offer the short way, see below)
--        [<dead-letter code> <error type> <error message> <failed attempts>]
-- Publishes the result event, then forgets the entry (or moves it to the dead-letter
-- store), advances the session's ordering gate and wakes its parked successor. The
-- clock is read only for a dead letter or a woken successor.
-- The short way (a claim of a current entry that no successor waited on): publish,
-- take the entry off its listing, delete it, keep the copy; no read of the entry. A
-- successor that parks on an entry takes it off its listing (`park`), so finding it
-- listed says that none waits on it, and finding it unlisted sends the call the long
-- way (read the entry, wake the successor), as does a duplicate finish (no entry: the
-- event just added is deleted again in the same atomic call, so no consumer sees it).
-- Returns 0 when another delivery finished the command first (its event is out).
local function finish()
  local jid, worker, stream, maxlen, event, outcome, visibility_ms, run_ttl_s, copy_session, copy_text, copy_ttl_s, entry_queue, entry_run, entry_cid = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], argv[11], argv[12], argv[13], argv[14], argv[15], argv[16]
  local dead_letter_code, dead_letter_type, dead_letter_message, attempts = argv[17], argv[18], argv[19], argv[20]
  local visibility = tonumber(visibility_ms)
  local e = key('j', jid)
  -- The session as the store just wrote it (`copy_session` '' for none): written with
  -- the event, so the successor's claim, which the gate holds until this entry is
  -- gone, reads this copy and no older one.
  local function keep_copy()
    if copy_session ~= '' then
      redis.call('SET', key('c', copy_session), jid .. '\n' .. copy_text, 'EX', copy_ttl_s)
    end
  end
  local published
  if entry_queue and entry_queue ~= '' and not dead_letter_code then
    -- First, so a refused XADD (ACL, OOM) leaves everything else as it was.
    published = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event)
    if redis.call('ZREM', key('queued', entry_queue), jid) == 1 then
      if redis.call('DEL', e) == 0 then -- listed, not journaled (Redis lost the entry)
        redis.call('XDEL', stream, published)
        return 0
      end
      keep_copy()
      if entry_run ~= '' then record_outcome(entry_run, entry_cid, outcome) end
      return 1
    end
  end
  local entry = fields(e, 'cid', 'sid', 'seq', 'pj', 'wake', 'run', 'q', 'att', 'dlv', 'ff',
    'qf')
  if not entry.cid then
    if published then redis.call('XDEL', stream, published) end
    return 0
  end
  if not published then
    -- First, so a refused XADD (ACL, OOM) leaves everything else as it was.
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event)
  end
  keep_copy()
  if dead_letter_code then
    local now = now_ms()
    local d = key('dlq', jid)
    redis.call('HSET', d, 'id', jid, 'cmd', redis.call('HGET', e, 'cmd'), 'cid', entry.cid,
      'sid', entry.sid,
      'q', entry.q, 'run', entry.run, 'code', dead_letter_code, 'type', dead_letter_type,
      'message', dead_letter_message,
      'attempts', math.max(tonumber(attempts or '0'), tonumber(entry.att or '0')),
      'deliveries', entry.dlv, 'first_failure', entry.ff or now,
      'last_failure', now, 'dead_lettered_at', now)
    redis.call('ZADD', key('dlq'), now, jid)
  end
  -- The gate: with this entry gone its successor may go; a parked one is woken.
  local successor = entry.wake
  local seq = tonumber(entry.seq)
  if seq and not entry.pj then -- enqueued before `pj`: its place is in the session hash
    local s = key('s', entry.sid)
    successor = successor or redis.call('HGET', s, 'p:' .. (seq + 1))
    redis.call('HDEL', s, 'j:' .. seq, 'p:' .. (seq + 1))
  end
  if successor and redis.call('HGET', key('j', successor), 'st') == 'parked' then
    push(successor, now_ms(), visibility, true) -- not if the reaper's re-check got it going
  end
  if entry.run ~= '' then record_outcome(entry.run, entry.cid, outcome) end
  -- `busy` is left to the worker's next heartbeat: it names a finished entry until
  -- then, which nothing takes for one in flight (the entry is gone).
  redis.call('DEL', e)
  redis.call('ZREM', key('queued', entry.q), jid)
  -- In `due`: claimed by an older script, or moved there by a successor's `park`.
  if entry.wake or not entry.qf then redis.call('ZREM', key('due'), jid) end
  return 1
end

-- retry <jid> <worker> <delay ms> <error type> <error message>
-- A failed attempt: the reaper re-enqueues the command when the delay is over.
local function retry()
  local jid, worker, delay_ms, error_type, error_message = argv[3], argv[4], argv[5], argv[6], argv[7]
  local e = key('j', jid)
  if redis.call('EXISTS', e) == 0 then return 0 end
  local now = now_ms()
  redis.call('HINCRBY', e, 'att', 1)
  redis.call('HSETNX', e, 'ff', now)
  redis.call('HSET', e, 'st', 'waiting', 'own', '', 'lf', now, 'etype', error_type,
    'err', error_message)
  redis.call('ZADD', key('due'), now + tonumber(delay_ms), jid)
  redis.call('ZREM', key('queued', redis.call('HGET', e, 'q')), jid)
  release(worker, jid)
  return 1
end

-- The lowest queue position of a pipeline message still on <queue>, or nil when the
-- messages next in line (the list's right end, where BRPOP takes from) do not say
-- within <scan> of them. Messages are pushed on the left in position order, so the
-- first one from the right with a plain position is the oldest of those; woken
-- successors put on the right end (`push` with front) carry the last position given
-- out when they were put there, lower than that of any message pushed after them, so
-- they count too. Messages sent around the script (no pipeline tag) do not.
local function lowest_queued_position(queue, scan)
  local lowest
  for from = 1, scan, 10 do
    local messages = redis.call('LRANGE', queue, -(from + 9), -from)
    for i = #messages, 1, -1 do
      local position, front = string.match(messages[i], '"delivery_tag": ?"[^"]*%.(%d+)(f?)"')
      if position then
        position = tonumber(position)
        if not lowest or position < lowest then lowest = position end
        if front == '' then return lowest end
      end
    end
    if #messages < 10 then return lowest end
  end
  return nil
end

-- Messages of <queue> lost between the queue and a worker (kombu's BRPOP window: a
-- worker killed after taking a message off the queue and before its claim), and
-- commands claimed by a worker that died before its first heartbeat named them. The
-- queue is FIFO, so every entry listed below the lowest position still on the queue
-- has been taken off it. `qmark:<queue>` remembers "every position below P had been
-- taken off by <ms>" (P is one past the last position given out when the queue is
-- empty). A visibility timeout after the mark, what is still listed below P and is
-- neither claimed nor being applied is pushed again (at most <limit> a pass; the rest
-- on the next pass), and a new mark is taken. So the work is what is lost or running,
-- found by one range query, never the backlog.
local function reap_lost(queue, now, visibility, heartbeat_timeout, limit)
  local listed, mark = key('queued', queue), key('qmark', queue)
  local marked = fields(mark, 'pos', 'at')
  if marked.at and now - tonumber(marked.at) < visibility then return 0 end
  local requeued = 0
  if marked.pos then
    local lost = redis.call('ZRANGEBYSCORE', listed, '-inf', '(' .. marked.pos, 'LIMIT', 0, limit)
    for _, jid in ipairs(lost) do
      local entry = fields(key('j', jid), 'st', 'own', 'at')
      if entry.st == 'queued' or (entry.st == 'running'
          and not applying_now(entry.own, jid, entry.at, now, heartbeat_timeout)) then
        push(jid, now, visibility, false)
        requeued = requeued + 1
      elseif entry.st ~= 'running' and entry.st ~= 'new' then
        redis.call('ZREM', listed, jid) -- finished, parked or waiting meanwhile
      end
    end
    if #lost == tonumber(limit) then return requeued end -- more below P: next pass, same mark
  end
  local passed
  if redis.call('LLEN', queue) == 0 then
    passed = tonumber(redis.call('GET', key('qpos', queue)) or '0') + 1
  else
    -- Not known (a long run of woken successors or foreign messages next in line):
    -- the old mark holds for another visibility timeout.
    passed = lowest_queued_position(queue, 100) or marked.pos
  end
  if passed then redis.call('HSET', mark, 'pos', passed, 'at', now) end
  return requeued
end

-- The dead-letter store's bounds: entries older than <ttl ms> go, then the oldest
-- while there are more than <max>, at most <limit> a pass. Counted in
-- `dlqevicted` (shown by `checkout status`, and as a metric by the reaper).
local function evict_dead_letters(now, max, ttl, limit)
  local dlq = key('dlq')
  local stored = redis.call('ZCARD', dlq)
  if stored == 0 then return 0 end
  local gone = redis.call('ZRANGEBYSCORE', dlq, '-inf', now - ttl, 'LIMIT', 0, limit)
  local excess = math.min(stored - #gone - max, limit - #gone)
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', dlq, #gone, #gone + excess - 1)) do
      gone[#gone + 1] = id
    end
  end
  if #gone == 0 then return 0 end
  local entries = {}
  for i, id in ipairs(gone) do entries[i] = key('dlq', id) end
  redis.call('DEL', unpack(entries))
  redis.call('ZREM', dlq, unpack(gone))
  redis.call('INCRBY', key('dlqevicted'), #gone)
  return #gone
end

-- A retry whose delay is over, a parked command due for a re-check, a command a
-- successor parked on (`park`; and, from older scripts, running or queued entries in
-- `due`): pushed again, or left for later.
local function reap_due(now, visibility, heartbeat_timeout, limit)
  local requeued = 0
  local due = redis.call('ZRANGEBYSCORE', key('due'), '-inf', now, 'LIMIT', 0, limit)
  for _, jid in ipairs(due) do
    local entry = fields(key('j', jid), 'st', 'own', 'q', 'qpos', 'at')
    if not entry.st then
      redis.call('ZREM', key('due'), jid)
    elseif entry.st == 'running' and applying_now(entry.own, jid, entry.at, now, heartbeat_timeout) then
      redis.call('ZADD', key('due'), now + visibility, jid) -- a slow command, still being applied
    elseif entry.st == 'queued' then
      -- Queued by a script from before `queued:<queue>`: listed there from now on.
      redis.call('ZADD', key('queued', entry.q), tonumber(entry.qpos) or 0, jid)
      redis.call('SADD', key('queues'), entry.q)
      redis.call('ZREM', key('due'), jid)
    else
      push(jid, now, visibility, false)
      requeued = requeued + 1
    end
  end
  return requeued
end

-- Commands claimed by worker processes found dead (<dead>: id -> true) that no beat of
-- theirs named (a claim writes only the entry): each queue's entries listed below the
-- lowest position still on it have been taken off it, so they are the running ones
-- (and lost ones), a handful however long the backlog; those running under a dead
-- owner are pushed again now, not a visibility timeout later by `reap_lost`.
local function reap_claimed_by(dead, now, visibility, limit)
  local requeued = 0
  for _, queue in ipairs(redis.call('SMEMBERS', key('queues'))) do
    local below
    if redis.call('LLEN', queue) == 0 then
      below = tonumber(redis.call('GET', key('qpos', queue)) or '0') + 1
    else
      below = lowest_queued_position(queue, 100) -- nil: not known, `reap_lost` will do
    end
    if below then
      local taken = redis.call('ZRANGEBYSCORE', key('queued', queue), '-inf', '(' .. below,
        'LIMIT', 0, limit)
      for _, jid in ipairs(taken) do
        local entry = fields(key('j', jid), 'st', 'own')
        if entry.st == 'running' and dead[entry.own] then
          push(jid, now, visibility, false)
          requeued = requeued + 1
        end
      end
    end
  end
  return requeued
end

-- reap <visibility ms> <heartbeat timeout ms> <limit> <owner> <lease ms>
--      <dead-letter max> <dead-letter ttl ms> <full: 1 or 0>
-- With an owner, only while it holds the reaper lease (taken or renewed here).
-- Re-enqueues what nobody is working on: a retry whose delay is over and a parked
-- command due for a re-check (every pass); with <full> 1 also the command of a worker
-- process whose heartbeat stopped and a message lost between the queue and a worker
-- (`reap_lost`), and keeps the dead-letter store within its bounds. `due` holds only
-- waiting and parked entries, so neither a backlog nor running commands cost a pass
-- anything. Returns {re-enqueued, dead workers, dead letters evicted, now ms, 1 if the
-- lease is held (or no owner) else 0}.
local function reap()
  local visibility_ms, heartbeat_timeout_ms, limit, owner, lease_ms, dead_letter_max, dead_letter_ttl_ms, full = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10]
  local visibility, heartbeat_timeout = tonumber(visibility_ms), tonumber(heartbeat_timeout_ms)
  if owner and owner ~= '' then
    -- One reaper at a time: take the lease, or renew it if ours, in the same call
    -- (the holder renews: a GET and a PEXPIRE).
    local lease = key('reaper')
    local holder = redis.call('GET', lease)
    if holder == owner then
      redis.call('PEXPIRE', lease, lease_ms)
    elseif holder then
      return { 0, 0, 0, 0, 0 }
    else
      redis.call('SET', lease, owner, 'PX', lease_ms)
    end
  end
  local now, requeued = now_ms(), 0
  if full == '0' then
    return { reap_due(now, visibility, heartbeat_timeout, limit), 0, 0, now, 1 }
  end
  local dead = redis.call('ZRANGEBYSCORE', key('workers'), '-inf', now - heartbeat_timeout)
  local dead_owners = {}
  for _, worker in ipairs(dead) do
    local jid = redis.call('HGET', key('busy'), worker)
    if jid and redis.call('HGET', key('j', jid), 'own') == worker then
      push(jid, now, visibility, false)
      requeued = requeued + 1
    end
    redis.call('HDEL', key('busy'), worker)
    redis.call('ZREM', key('workers'), worker)
    dead_owners[worker] = true
  end
  if #dead > 0 then requeued = requeued + reap_claimed_by(dead_owners, now, visibility, limit) end
  requeued = requeued + reap_due(now, visibility, heartbeat_timeout, limit)
  for _, queue in ipairs(redis.call('SMEMBERS', key('queues'))) do
    requeued = requeued + reap_lost(queue, now, visibility, heartbeat_timeout, limit)
  end
  local evicted = evict_dead_letters(now, tonumber(dead_letter_max), tonumber(dead_letter_ttl_ms),
    tonumber(limit))
  return { requeued, #dead, evicted, now, 1 }
end

-- replay <dead-letter id> <visibility ms> <shard tag>
-- A fresh delivery of a dead-lettered command, outside the ordering gate (its turn
-- has passed). Removing the entry in the same step makes a second replay a no-op.
-- Returns the new jid, '' if there is no such entry, or 'raw' for an undeliverable
-- message that is not a command.
local function replay()
  local entry_id, visibility_ms, shard_tag = argv[3], argv[4], argv[5]
  local d, visibility = key('dlq', entry_id), tonumber(visibility_ms)
  local tag_prefix = jid_prefix(shard_tag or '')
  if not tag_prefix then return redis.error_reply("replay: <shard tag> is not '' or s<K>") end
  local dead = fields(d, 'cmd', 'cid', 'q', 'run')
  if not dead.q then return '' end
  if not dead.cmd or dead.cmd == '' then return 'raw' end
  local now = now_ms()
  local jid = new_jid(now, tag_prefix)
  new_entry(jid, dead.cmd, dead.cid, '', dead.q, dead.run or '', now)
  push(jid, now, visibility, false)
  if dead.run and dead.run ~= '' then record_outcome(dead.run, dead.cid, PENDING) end
  redis.call('DEL', d)
  redis.call('ZREM', key('dlq'), entry_id)
  return jid
end

-- bury <id> <stream> <maxlen> <event json> <queue> <raw message> <code> <type> <message>
-- A message that can never be processed (not JSON, not a Celery message, an unknown
-- task): straight to the dead-letter store, with its result event.
local function bury()
  local entry_id, stream, maxlen, event, queue, raw, dead_letter_code, dead_letter_type, dead_letter_message = argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], argv[11]
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event)
  local now = now_ms()
  redis.call('HSET', key('dlq', entry_id), 'id', entry_id, 'cmd', '', 'cid', '', 'sid', '',
    'q', queue, 'run', '', 'raw', raw, 'code', dead_letter_code, 'type', dead_letter_type,
    'message', dead_letter_message, 'attempts', 0, 'deliveries', 1, 'first_failure', now,
    'last_failure', now, 'dead_lettered_at', now)
  redis.call('ZADD', key('dlq'), now, entry_id)
  return 1
end

-- beat <worker> <jid it is applying, or ''> [<clear busy: 0 to skip>] -> Redis's clock, ms:
-- a worker process is alive (Redis's clock,
-- like every other time here), and what it is doing. Setting `busy` from here too
-- clears a mark a failed `finish` left behind (Redis refused it), so the reaper does
-- not take that command for one still being applied.
-- The jid is marked only while its entry is this worker's: the beat's thread may have
-- read it just before `finish` cleared the mark, and must not set it again after.
local function beat()
  local worker, jid = argv[3], argv[4]
  local clear_busy = argv[5]
  local now = now_ms()
  redis.call('ZADD', key('workers'), now, worker)
  if jid and jid ~= '' and redis.call('HGET', key('j', jid), 'own') == worker then
    redis.call('HSET', key('busy'), worker, jid)
  elseif clear_busy ~= '0' then -- '0': an idle beat after an idle beat, nothing to clear
    redis.call('HDEL', key('busy'), worker)
  end
  return now -- Redis's clock, for the worker's estimate of it (`claim`'s <clock ms>)
end

local ops = {
  enqueue = enqueue, enqueue_batched = enqueue_batched, claim = claim, take = take,
  finish = finish, retry = retry, reap = reap, replay = replay, bury = bury, beat = beat,
}

-- One entry point for both ways of calling the file. As a script (EVALSHA, any Redis
-- from 6.2) the last line runs it with ARGV. As a Functions library (Redis 7,
-- `worker.delivery.scripting`) that line is replaced by `redis.register_function`, so
-- the body above is evaluated once at FUNCTION LOAD instead of on every call.
local function run(args)
  argv, prefix = args, args[2]
  local operation = ops[args[1]]
  if not operation then return redis.error_reply('unknown operation ' .. tostring(args[1])) end
  return operation()
end

return run(ARGV)
