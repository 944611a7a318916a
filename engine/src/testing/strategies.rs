//! Proptest strategies for raw inputs: every value an agent may report, and adversarial inputs
//! (stale UIDs, unknown members, out-of-order observations).

use super::node_name;
use crate::input::{
    AgentReport, CopyProgress, EffectError, Input, NotServing, Outcome, PodObservation, Poll,
    Process, Timeline,
};
use crate::types::{ConfigHash, Lsn, MemberId, PodUid, Role};
use proptest::prelude::*;

/// Every copy progress an agent may report, extreme percentages included.
pub fn arb_copy_progress() -> impl Strategy<Value = CopyProgress> {
    prop_oneof![
        Just(CopyProgress::Idle),
        any::<u8>().prop_map(|percent| CopyProgress::Copying { percent }),
        Just(CopyProgress::Failed),
    ]
}

/// Every reason an agent may give for a database that is not serving, or none.
pub fn arb_not_serving() -> impl Strategy<Value = Option<NotServing>> {
    prop_oneof![
        Just(None),
        Just(Some(NotServing::Starting)),
        Just(Some(NotServing::Restarted)),
        Just(Some(NotServing::Demoted)),
        Just(Some(NotServing::Fenced)),
        Just(Some(NotServing::LeaseExpired)),
    ]
}

/// Every place in the history an agent may report: unknown, small timelines that meet each other
/// (same, parent, unrelated), and extreme ids and positions.
pub fn arb_timeline() -> impl Strategy<Value = Timeline> {
    let id = prop_oneof![Just(0u64), 1u64..4, Just(u64::MAX)];
    let lsn = prop_oneof![Just(0u64), 0u64..200_000, Just(u64::MAX)];
    (id.clone(), id, lsn).prop_map(|(id, parent, branched_at)| Timeline {
        id,
        parent,
        branched_at: Lsn(branched_at),
    })
}

/// An adversarial raw input: stale UIDs, unknown members, out-of-order observations.
pub fn arb_raw_input() -> impl Strategy<Value = Input> {
    let member = (0u8..3).prop_map(MemberId);
    let report = (
        prop_oneof![
            Just(Process::Running),
            Just(Process::Down),
            Just(Process::Starting)
        ],
        prop_oneof![Just(Role::Active), Just(Role::Standby), Just(Role::None)],
        0u64..200_000,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        arb_copy_progress(),
        arb_not_serving(),
        arb_timeline(),
    )
        .prop_map(
            |(
                process,
                role,
                lsn,
                connected,
                in_sync,
                copy_complete,
                copy,
                not_serving,
                timeline,
            )| {
                AgentReport {
                    process,
                    role,
                    lsn: Lsn(lsn),
                    replication_connected: connected,
                    in_sync,
                    copy_complete,
                    config_hash: ConfigHash(0),
                    copy,
                    not_serving,
                    timeline,
                }
            },
        );
    prop_oneof![
        (member.clone(), report).prop_map(|(member, report)| Input::Agent {
            member,
            poll: Poll::Report(report)
        }),
        member.clone().prop_map(|member| Input::Agent {
            member,
            poll: Poll::Unreachable
        }),
        (member.clone(), 0u64..4, any::<bool>()).prop_map(|(member, uid, deleting)| Input::Pod {
            member,
            pod: Some(PodObservation {
                uid: PodUid(format!("stale-{uid}")),
                node: Some(node_name(uid as usize % 3)),
                running: true,
                deleting,
            }),
        }),
        (0u64..50).prop_map(|id| Input::EffectFinished {
            id: crate::types::EffectId(id),
            outcome: Outcome::Failed(EffectError::Conflict),
        }),
        Just(Input::Timer),
        Just(Input::Recovered { log_lost: false }),
    ]
}
