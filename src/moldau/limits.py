"""Every bound Moldau enforces, in one place, units last in each name.

A peer that goes past one of these gets a Kafka error code or a closed connection; the
broker keeps serving everyone else. Values that Kafka makes configurable (message.max.bytes,
socket.request.max.bytes, ...) are the defaults here and can be overridden per broker or
topic; the others are hard safety bounds.
"""

# --- connections and framing -------------------------------------------------------------
# Kafka's socket.request.max.bytes default: a request frame larger than this closes the
# connection (Kafka does the same: it cannot know where the next frame starts otherwise).
frame_bytes_max = 100 * 1024 * 1024
# Requests read ahead of their responses on one connection. Clients pipeline (librdkafka:
# max.in.flight 1,000,000 by default); past this bound the server stops reading the socket.
inflight_requests_per_connection_max = 1000
connections_max = 10_000
# Kafka's queued.max.request.bytes: the bytes of all request frames being received at once
# (runtime/memory.py). Past it, connections that need more stop reading until memory frees;
# one frame may pass it, so the largest frame (frame_bytes_max) always gets through. Kafka's
# default is unbounded; a bound keeps a crowd of large producers from exhausting memory.
queued_request_bytes_max_default = 128 * 1024 * 1024
# After the request buffers held at least this much, memory is handed back to the OS
# (malloc_trim) once they are all free again.
memory_trim_after_bytes = 16 * 1024 * 1024
# A connection with no request for this long is closed (Kafka's connections.max.idle.ms), so
# clients that vanished without closing (a killed host, a dropped network) do not hold a slot
# of connections_max forever.
connection_idle_ms_default = 600_000
client_id_bytes_max = 32_767

# --- topics and partitions ---------------------------------------------------------------
topic_name_chars_max = 249
partitions_per_topic_max = 100_000
partitions_per_broker_max = 200_000
replication_factor_max = 32767
topics_per_request_max = 100_000
config_value_bytes_max = 1024 * 1024

# --- records and batches -----------------------------------------------------------------
# Kafka's message.max.bytes default (1 MiB plus a batch-header allowance).
message_bytes_max_default = 1_048_588
records_per_batch_max = 10_000_000

# --- fetch -------------------------------------------------------------------------------
fetch_wait_ms_max = 30_000
fetch_response_bytes_max_default = 52_428_800
fetch_partition_bytes_max_default = 1_048_576
# Fetch sessions (KIP-227): Kafka's max.incremental.fetch.session.cache.slots, and how long a
# session must have been idle before a new one may take its slot
# (min.incremental.fetch.session.eviction.ms).
fetch_sessions_max = 1000
fetch_session_eviction_ms = 120_000
# A session unused this long belongs to a client that is gone (consumers fetch at least every
# fetch.max.wait.ms): dropped on the broker's tick.
fetch_session_idle_ms = 600_000
# Waiting fetches and acks=all produces held as delayed operations.
delayed_operations_max = 100_000

# --- log directory and disk space ---------------------------------------------------------
# log.dir.free.bytes.min: below this much free space on the data directory the broker refuses
# produce requests and new partitions with KAFKA_STORAGE_ERROR, so that it never fills the
# disk to the last byte itself; what is left serves the broker's own small writes
# (checkpoints, indexes, metadata records, committed offsets). 0 turns the check off.
log_dir_free_bytes_min_default = 4 * 1024 * 1024
# The free space is read from the OS (statvfs, ~2 us) at most this often while far from the
# reserve (near it, on every append): once per millisecond costs a busy broker about 0.2% of a
# core, and a disk that another process filled is seen by the next produce request.
log_dir_free_space_check_ms = 1

# --- log ---------------------------------------------------------------------------------
segment_bytes_default = 1024 * 1024 * 1024
segment_bytes_min = 14  # Kafka's lower bound for segment.bytes (one empty batch header)
index_interval_bytes_default = 4096
index_bytes_max_default = 10 * 1024 * 1024
retention_ms_default = 7 * 24 * 3600 * 1000
leader_epoch_entries_max = 100_000

# --- log cleaner (cleanup.policy=compact, log/cleaner.py) --------------------------------
# Source bytes one clean_log call reads (offset map and cleaning together) before it returns
# to the event loop; the next broker tick continues the pass. A batch bigger than this is
# still read whole, alone. Measured at 50-75 ms per MiB (small records, none or zstd), so a
# call stays near 100-150 ms.
cleaner_bytes_per_call_max = 2 * 1024 * 1024
# All compacted partitions together, per broker tick: the logs take turns (the first to clean
# moves on by one each tick), so many dirty logs cost one call's worth, not one call each.
cleaner_bytes_per_tick_max = 2 * 1024 * 1024
# The offset map of one cleaning pass (Kafka bounds it with log.cleaner.dedupe.buffer.size):
# a dirty section with more keys is cleaned up to the batch where the map filled.
cleaner_offset_map_keys_max = 1_000_000
cleaner_offset_map_key_bytes_max = 64 * 1024 * 1024

# --- transactions ------------------------------------------------------------------------
# A transactional id is the key of its __transaction_state record, an int16-length string
# (Kafka's clients cannot send a longer one either): longer ones are INVALID_REQUEST.
transactional_id_bytes_max = 32_767
# Transactional ids one coordinator holds in memory (all the __transaction_state partitions
# it leads); past it InitProducerId for a new id is answered COORDINATOR_NOT_AVAILABLE.
transactional_ids_max = 1_000_000
# Partitions one transaction may write to (Kafka has no bound; each costs a marker).
partitions_per_transaction_max = 100_000
# Markers (one per partition of a transaction) a coordinator keeps queued for other brokers.
txn_markers_queued_max = 1_000_000
# A marker request to another broker that failed (no connection, timeout, a retriable
# partition error) is sent again after this long (Kafka's retry.backoff.ms default).
txn_marker_retry_backoff_ms = 100

# --- groups ------------------------------------------------------------------------------
group_members_max = 1000
group_session_timeout_ms_min = 6_000
group_session_timeout_ms_max = 1_800_000
group_initial_rebalance_delay_ms = 3_000
offset_metadata_bytes_max = 4096
# KIP-848 consumer groups: subscriptions a heartbeat may carry, regexes kept compiled, how
# often a group's regexes are matched again against changed metadata.
consumer_group_subscribed_topics_max = 100_000
consumer_group_regex_chars_max = 10_000
consumer_group_regex_cache_max = 1_000
consumer_group_regex_refresh_ms = 1_000

# --- metadata quorum (raft/) ---------------------------------------------------------------
# Observers (broker-only nodes) whose fetch progress the Raft leader tracks for DescribeQuorum;
# fetches from more distinct replica ids are still answered, just not tracked.
raft_observers_max = 10_000
