//! Every limit of the scenario language, in one place (`docs/simulator.md` lists them too).
//!
//! A value beyond one is refused when the file is read, with its file, line and key, so that
//! whatever a file is accepted with runs: no time the run computes can wrap, and no count can
//! size an allocation the machine cannot make.

use super::Millis;

/// The longest run, and the longest time any key of a scenario may give: `duration`, `at`,
/// `for`, `restartAfter`, `period`, `recoveredWithin`, the `seconds` of `slow-start`, and the
/// world's seconds and milliseconds. A day of simulated time: 24 times the longest scenario of
/// the catalog and explore's default run. A span this long outlasts every run, so it says
/// "until the end". With it, every time a run computes (the run's time, plus a span, plus a
/// latency, plus a timeout of the spec, which counts whole seconds in 32 bits, backed off up to
/// 32 times) stays below some thousands of years of milliseconds, where a `u64` wraps only
/// after 584 million years; and a day of polls every second, with their answers, timers and
/// effects, takes far fewer events than the run's event limit (`run::MAX_EVENTS`).
pub const MAX_DURATION_MS: Millis = 24 * 60 * 60 * 1000;

/// The most client writes a second (`world.writesPerSecond`): a million, more than one
/// database primary acknowledges. With it, the data a run of [`MAX_DURATION_MS`] writes
/// (`writesPerSecond` × seconds × 100 bytes, under 10^13) and the replication lag in bytes
/// (`writesPerSecond` × `replicationLagMs` × 100 / 1000) stay far below where a `u64` position
/// wraps.
pub const MAX_WRITES_PER_SECOND: u32 = 1_000_000;

/// The largest database a world may hold (`world.dataGigabytes`): a pebibyte. With it, and at
/// least a mebibyte a second (`world.copyMegabytesPerSecond`), a copy takes at most 2^30 seconds,
/// whose milliseconds stay far below where a `u64` wraps; a copy that outlasts the run simply
/// never completes in it.
pub const MAX_DATA_GIGABYTES: u64 = 1 << 20;

/// The fastest copy a world may have (`world.copyMegabytesPerSecond`), in MiB a second: a
/// tebibyte a second, beyond any network.
pub const MAX_COPY_MEGABYTES_PER_SECOND: u64 = 1 << 20;

/// The most nodes a world may have (`world.nodes`): the engine tracks at most this many
/// (`tandem_engine::limits::MAX_NODES`, the largest Kubernetes cluster), and refuses a node
/// beyond them; each node is an object of the world and an observation at the operator's start.
pub const MAX_NODES: u32 = 5_000;

const _: () = assert!(MAX_NODES as usize == tandem_engine::limits::MAX_NODES);

/// The most entries a timeline may have. Explore draws at most a dozen (six, each perhaps
/// with its pair) and the catalog's longest has a handful; a thousand is more than any story
/// of failures needs, and keeps the run's queue and its picture small.
pub const MAX_TIMELINE_ENTRIES: usize = 1_000;

/// The most states `expect.visits` and `expect.never` may each list: the engine has 15 kinds of
/// state, and a path through them that visits a hundred is more than anyone checks by hand.
pub const MAX_EXPECTED_STATES: usize = 100;

/// The longest scenario name, in bytes. The name names the run's log stream, with the seed, a
/// suffix for a run of the same name and a suffix per lost log after it (at most 57 bytes; the
/// log takes names of up to `tandem_sled::MAX_STREAM_NAME_BYTES`, 320), and the files
/// `--trace` and `--timeline` write for each scenario, after the given file's stem and before
/// its extension (a file name is at most 255 bytes on common file systems): 200 leaves room
/// for both.
pub const MAX_NAME_BYTES: usize = 200;

const _: () = assert!(MAX_NAME_BYTES + 57 <= tandem_sled::MAX_STREAM_NAME_BYTES);

/// The largest scenario file, in bytes: a mebibyte. The catalog's largest file is under 1 KiB
/// and explore writes smaller ones; parsing takes some 40 times a file's size in memory, so a
/// file at this limit costs tens of megabytes, where a file without a limit could exhaust the
/// machine's memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
