"""The Redis delivery protocol (`pipeline.lua`, its spec `protocol.json`) and what runs
on it: journal, processor, retries, heartbeat, reaper, dead letters, runs. Imports
`schemas`, `worker.domain`, `worker.service`, `worker.observability` and the kernel."""
