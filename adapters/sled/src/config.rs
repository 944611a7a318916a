//! What a log is opened with.

/// The log's tunables. [`LogConfig::default`] is what the operator runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A snapshot of a stream's folded state is written whenever an append crosses a multiple
    /// of this many records. `0` turns automatic snapshots off.
    pub snapshot_every_records: u64,
    /// Records covered by a snapshot are pruned, but the last this many records of a stream are
    /// always kept (for audit and replay). `u64::MAX` turns pruning off.
    pub retain_records: u64,
    /// The size of sled's in-memory page cache.
    pub cache_capacity_bytes: u64,
    /// Whether an append returns only once durable (see `docs/event-log.md`). Only a log that
    /// needs no durability turns this off: the simulator's, whose time is virtual and whose
    /// machine never loses power. Appends are still atomic and ordered without it.
    pub durable_appends: bool,
}

/// Snapshots every 10,000 records: recovery folds at most that many records after a snapshot.
pub const DEFAULT_SNAPSHOT_EVERY_RECORDS: u64 = 10_000;

/// The last 100,000 records of a stream are kept.
pub const DEFAULT_RETAIN_RECORDS: u64 = 100_000;

/// 64 MiB of page cache.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            snapshot_every_records: DEFAULT_SNAPSHOT_EVERY_RECORDS,
            retain_records: DEFAULT_RETAIN_RECORDS,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
            durable_appends: true,
        }
    }
}
