//! No record or snapshot that passes its checksum can panic a reader. Real histories (a pair
//! and a single instance, driven through creation, failures and recoveries by arbitrary raw
//! inputs) are encoded; one record, or the snapshot of the state, is then mutated byte by byte
//! (bits flipped, bytes set to extremes, bytes inserted and removed) and framed again with a
//! correct checksum, as a stray write or a bug that computes the checksum after the damage
//! would leave it. Whatever decodes is folded, and a folded engine then takes a few more steps.
//! Each of these either works or returns a named error; none panics. In a debug build (the
//! test command runs this suite there too) an arithmetic overflow is a panic as well.
//!
//! Every run draws the same cases from a fixed seed (`PROPTEST_RNG_SEED=N` draws other cases),
//! and more from a fresh seed.

mod seeds;

use proptest::prelude::*;
use seeds::fixed_and_fresh;
use tandem_engine::testing::{Harness, arb_raw_input, normal_cluster};
use tandem_engine::{
    Engine, EngineState, Input, Record, Replication, Spec, Topology,
    record::{FORMAT_VERSION, SNAPSHOT_VERSION},
};

const CASES: u32 = 4_000;
const CI_SEED: u64 = 0xF01D_F022_2026;

/// The header: magic (2), version (2), payload length (4), CRC-32 (4).
const HEADER_LEN: usize = 12;

fn config() -> [ProptestConfig; 2] {
    fixed_and_fresh(CASES, CI_SEED)
}

/// Frames a payload as the format describes it, with a correct checksum.
fn frame(magic: [u8; 2], version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[2..8]);
    hasher.update(payload);
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// One change to a payload.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let position = any::<usize>();
    let extreme = prop_oneof![Just(0u8), Just(1), Just(2), Just(7), Just(0x7f), Just(0xff)];
    prop_oneof![
        3 => (position, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        3 => (position, prop_oneof![extreme, any::<u8>()])
            .prop_map(|(at, value)| Mutation::Set { at, value }),
        // A run of 0xff bytes reads as the largest varints postcard can hold.
        1 => (position, prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..12),
            (1usize..11).prop_map(|len| {
                let mut bytes = vec![0xff; len];
                bytes.push(0x01);
                bytes
            }),
        ])
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (position, 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn mutate(payload: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations {
        let len = payload.len().max(1);
        match mutation {
            Mutation::FlipBit { at, bit } => {
                if let Some(byte) = payload.get_mut(at % len) {
                    *byte ^= 1 << bit;
                }
            }
            Mutation::Set { at, value } => {
                if let Some(byte) = payload.get_mut(at % len) {
                    *byte = *value;
                }
            }
            Mutation::Insert { at, bytes } => {
                let at = at % (payload.len() + 1);
                payload.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len: count } => {
                let at = at % len;
                let end = (at + count).min(payload.len());
                if at < end {
                    payload.drain(at..end);
                }
            }
        }
    }
}

/// A history: the records of a cluster taken through its bootstrap and arbitrary inputs.
fn history(topology: Topology, inputs: &[(u64, Input)]) -> Vec<Record> {
    let mut spec = Spec::defaults(topology);
    spec.replication = Replication::Sync;
    let mut harness: Harness = normal_cluster(&spec);
    let mut now = harness.engine.now();
    for (advance, input) in inputs {
        now = now.plus_ms(advance % 120_000);
        // An input the engine refuses, or a violation, ends the history here: what was
        // recorded until then is still a valid history.
        if harness.step(now, input.clone()).is_err() {
            break;
        }
    }
    harness
        .log
        .iter()
        .map(|bytes| Record::decode(bytes).expect("the harness wrote valid records"))
        .collect()
}

/// A folded engine takes a few more steps; each may be refused, none may panic.
fn exercise(mut engine: Engine) {
    let now = engine.now();
    for (offset, input) in [
        (0, Input::Recovered { log_lost: false }),
        (1, Input::Timer),
        (600_000, Input::Timer),
    ] {
        let Ok(step) = engine.step(now.plus_ms(offset), input) else {
            return;
        };
        let _effects = step.commit(|_| Ok::<(), ()>(()));
        let _ = engine.next_deadline();
        let _ = engine.state().cluster();
    }
}

fn inputs() -> impl Strategy<Value = Vec<(u64, Input)>> {
    proptest::collection::vec((any::<u64>(), arb_raw_input()), 0..24)
}

fn topology() -> impl Strategy<Value = Topology> {
    prop_oneof![Just(Topology::MasterSlave), Just(Topology::Standalone)]
}

proptest! {
    #![proptest_config(config()[0].clone())]

    #[test]
    fn a_mutated_record_with_a_valid_checksum_never_panics_the_fold(
        topology in topology(),
        inputs in inputs(),
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        mutate_a_record(topology, &inputs, pick, &mutations);
    }

    #[test]
    fn a_mutated_snapshot_with_a_valid_checksum_never_panics_recovery(
        topology in topology(),
        inputs in inputs(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        mutate_a_snapshot(topology, &inputs, &mutations);
    }
}

proptest! {
    #![proptest_config(config()[1].clone())]

    #[test]
    fn a_mutated_record_never_panics_the_fold_from_a_fresh_seed(
        topology in topology(),
        inputs in inputs(),
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        mutate_a_record(topology, &inputs, pick, &mutations);
    }

    #[test]
    fn a_mutated_snapshot_never_panics_recovery_from_a_fresh_seed(
        topology in topology(),
        inputs in inputs(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        mutate_a_snapshot(topology, &inputs, &mutations);
    }
}

/// Mutates one record of a history, fixes its checksum, and folds the history if it decodes.
fn mutate_a_record(
    topology: Topology,
    inputs: &[(u64, Input)],
    pick: usize,
    mutations: &[Mutation],
) {
    let records = history(topology, inputs);
    let index = pick % records.len();
    let encoded = records[index].encode();
    let mut payload = encoded[HEADER_LEN..].to_vec();
    mutate(&mut payload, mutations);
    let bytes = frame(*b"TR", FORMAT_VERSION, &payload);
    if let Ok(record) = Record::decode(&bytes) {
        let mut changed = records.clone();
        changed[index] = record;
        if let Ok(engine) = Engine::recover(EngineState::new(), &changed) {
            exercise(engine);
        }
    }
}

/// Mutates the snapshot of a history's state, fixes its checksum, and recovers from it if it
/// decodes.
fn mutate_a_snapshot(topology: Topology, inputs: &[(u64, Input)], mutations: &[Mutation]) {
    let records = history(topology, inputs);
    let engine = Engine::recover(EngineState::new(), &records).expect("a valid history folds");
    let encoded = engine.state().encode_snapshot();
    let mut payload = encoded[HEADER_LEN..].to_vec();
    mutate(&mut payload, mutations);
    let bytes = frame(*b"TS", SNAPSHOT_VERSION, &payload);
    if let Ok(state) = EngineState::decode_snapshot(&bytes) {
        // Recovery folds the records after a snapshot: here, none.
        if let Ok(engine) = Engine::recover(state, std::iter::empty()) {
            exercise(engine);
        }
    }
}

#[test]
fn the_mutations_reach_the_fold() {
    // Guards the test itself: unmutated, the bytes decode and fold, so a mutation that
    // decodes is folded too.
    let records = history(Topology::MasterSlave, &[]);
    let encoded = records[records.len() - 1].encode();
    let bytes = frame(*b"TR", FORMAT_VERSION, &encoded[HEADER_LEN..]);
    assert_eq!(bytes, encoded);
    assert!(Engine::recover(EngineState::new(), &records).is_ok());
}
