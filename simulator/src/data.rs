//! The ground truth about data: which writes a copy holds, and which acknowledged writes were
//! lost.
//!
//! A copy of the database is a position on a *branch* of history. Promoting a member starts a
//! new branch from its position, so a former active that kept accepting writes after a
//! promotion (a split brain) diverges visibly. Positions are LSNs in bytes; every write is
//! [`WRITE_BYTES`] long.

use tandem_engine::{Lsn, Timeline};

/// The size of one client write, in LSN bytes.
pub const WRITE_BYTES: u64 = 100;

/// A branch of history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Branch {
    /// The branch it forked from, and the LSN it forked at.
    parent: Option<(usize, u64)>,
}

/// A copy's position: a branch and an LSN on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The branch.
    pub branch: usize,
    /// The LSN (bytes).
    pub lsn: u64,
}

/// A range of acknowledged writes: `(from, to]` on a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Acked {
    branch: usize,
    from: u64,
    to: u64,
}

/// Every branch, and every acknowledged write.
#[derive(Clone, Debug)]
pub struct History {
    branches: Vec<Branch>,
    acked: Vec<Acked>,
}

impl Default for History {
    fn default() -> History {
        History {
            branches: vec![Branch { parent: None }],
            acked: Vec::new(),
        }
    }
}

impl History {
    /// A new branch forked at `position` (a promotion).
    pub fn fork(&mut self, position: Position) -> Position {
        self.branches.push(Branch {
            parent: Some((position.branch, position.lsn)),
        });
        Position {
            branch: self.branches.len() - 1,
            lsn: position.lsn,
        }
    }

    /// Whether the copy at `holder` contains the write at `write`.
    pub fn contains(&self, holder: Position, write: Position) -> bool {
        self.highest_on(holder, write.branch)
            .is_some_and(|lsn| write.lsn <= lsn)
    }

    /// The highest LSN of `branch` that the copy at `holder` contains, if it contains any.
    fn highest_on(&self, holder: Position, branch: usize) -> Option<u64> {
        let mut current = holder.branch;
        let mut limit = holder.lsn;
        // Each step moves to a strictly older branch, so this ends within the branch count.
        for _ in 0..=self.branches.len() {
            if current == branch {
                return Some(limit);
            }
            let (parent, fork) = self.branches[current].parent?;
            current = parent;
            limit = limit.min(fork);
        }
        None
    }

    /// The longest prefix of `holder` that `leader` contains: where a rewind of `holder` against
    /// `leader` takes it back to.
    pub fn common(&self, holder: Position, leader: Position) -> Position {
        let mut current = holder.branch;
        let mut limit = holder.lsn;
        // Each step moves to a strictly older branch, so this ends within the branch count.
        for _ in 0..=self.branches.len() {
            if let Some(lsn) = self.highest_on(leader, current) {
                return Position {
                    branch: current,
                    lsn: limit.min(lsn),
                };
            }
            let Some((parent, fork)) = self.branches[current].parent else {
                break;
            };
            current = parent;
            limit = limit.min(fork);
        }
        Position::default()
    }

    /// The copy's place in the history as an agent reports it: its branch as a timeline
    /// (numbered from 1), the branch it forked from and where.
    pub fn timeline(&self, holder: Position) -> Timeline {
        let (parent, branched_at) = self.branches[holder.branch]
            .parent
            .map_or((0, 0), |(parent, fork)| (parent as u64 + 1, fork));
        Timeline {
            id: holder.branch as u64 + 1,
            parent,
            branched_at: Lsn(branched_at),
        }
    }

    /// Whether `follower` is a prefix of `leader` (it can replicate from it without a rebuild).
    pub fn is_prefix(&self, follower: Position, leader: Position) -> bool {
        follower.lsn == 0 || self.contains(leader, follower)
    }

    /// Records writes `(from, to]` on `branch` as acknowledged.
    pub fn acknowledge(&mut self, branch: usize, from: u64, to: u64) {
        if to <= from {
            return;
        }
        if let Some(last) = self.acked.last_mut()
            && last.branch == branch
            && last.to == from
        {
            last.to = to;
            return;
        }
        self.acked.push(Acked { branch, from, to });
    }

    /// How many acknowledged writes the copy at `holder` lacks.
    pub fn lost_writes(&self, holder: Option<Position>) -> u64 {
        let lost_writes: u64 = self
            .acked
            .iter()
            .map(|range| {
                let held = holder.and_then(|holder| self.highest_on(holder, range.branch));
                let kept = held.map_or(range.from, |lsn| lsn.clamp(range.from, range.to));
                // A write missing any of its bytes is lost: a copy that trails by a part of a
                // write lacks that write.
                (range.to - kept).div_ceil(WRITE_BYTES)
            })
            .sum();
        lost_writes
    }

    /// How many writes were acknowledged in all.
    pub fn acknowledged_writes(&self) -> u64 {
        self.acked
            .iter()
            .map(|range| range.to - range.from)
            .sum::<u64>()
            / WRITE_BYTES
    }

    /// Whether `holder` holds every acknowledged write that `other` holds.
    pub fn at_least_as_new(&self, holder: Position, other: Position) -> bool {
        self.acked.iter().all(|range| {
            let in_other = self
                .highest_on(other, range.branch)
                .map_or(range.from, |l| l.clamp(range.from, range.to));
            let in_holder = self
                .highest_on(holder, range.branch)
                .map_or(range.from, |l| l.clamp(range.from, range.to));
            in_holder >= in_other
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_keeps_the_prefix_and_diverges_after() {
        let mut history = History::default();
        history.acknowledge(0, 0, 1_000);
        let old = Position {
            branch: 0,
            lsn: 1_000,
        };
        let promoted = history.fork(Position {
            branch: 0,
            lsn: 800,
        });
        assert!(history.contains(
            promoted,
            Position {
                branch: 0,
                lsn: 800
            }
        ));
        assert!(!history.contains(promoted, old));
        assert_eq!(history.lost_writes(Some(promoted)), 2);
        let newer = Position {
            lsn: 5_000,
            ..promoted
        };
        history.acknowledge(promoted.branch, 800, 5_000);
        assert_eq!(history.lost_writes(Some(newer)), 2);
        assert_eq!(history.lost_writes(Some(old)), 42);
        assert!(history.is_prefix(
            Position {
                branch: 0,
                lsn: 700
            },
            newer
        ));
        assert!(!history.is_prefix(old, newer));
        assert_eq!(history.lost_writes(None), 52);
    }

    fn at(branch: usize, lsn: u64) -> Position {
        Position { branch, lsn }
    }

    #[test]
    fn an_empty_history_lacks_nothing() {
        let history = History::default();
        assert_eq!(history.acknowledged_writes(), 0);
        assert_eq!(history.lost_writes(None), 0);
        assert_eq!(history.lost_writes(Some(Position::default())), 0);
        assert!(history.contains(Position::default(), Position::default()));
        assert!(history.at_least_as_new(Position::default(), at(0, 5_000)));
    }

    #[test]
    fn acknowledge_merges_adjacent_ranges_and_ignores_empty_ones() {
        let mut history = History::default();
        history.acknowledge(0, 0, 300);
        history.acknowledge(0, 300, 500);
        assert_eq!(
            history.acked,
            vec![Acked {
                branch: 0,
                from: 0,
                to: 500
            }]
        );
        // Empty or backwards ranges acknowledge nothing.
        history.acknowledge(0, 500, 500);
        history.acknowledge(0, 700, 600);
        assert_eq!(history.acknowledged_writes(), 5);
        // A gap, or another branch, starts a new range.
        history.acknowledge(0, 600, 700);
        let forked = history.fork(at(0, 700));
        history.acknowledge(forked.branch, 700, 900);
        assert_eq!(history.acked.len(), 3);
        assert_eq!(history.acknowledged_writes(), 8);
        // The copy at the end of branch 0 lacks the fork's writes, and not the gap.
        assert_eq!(history.lost_writes(Some(at(0, 700))), 2);
        assert_eq!(history.lost_writes(Some(at(forked.branch, 900))), 0);
    }

    #[test]
    fn a_fork_at_position_zero_contains_nothing_but_the_start() {
        let mut history = History::default();
        let forked = history.fork(Position::default());
        assert_eq!(forked, at(1, 0));
        assert!(history.contains(forked, at(0, 0)));
        assert!(!history.contains(forked, at(0, 100)));
        // An empty copy is a prefix of anything, on any branch.
        assert!(history.is_prefix(at(0, 0), at(1, 0)));
        assert!(history.is_prefix(at(1, 0), at(0, 900)));
        assert!(
            history.is_prefix(at(7, 0), at(0, 900)),
            "even an unknown one"
        );
        history.acknowledge(1, 0, 200);
        assert_eq!(history.lost_writes(Some(at(0, 200))), 2);
        assert_eq!(history.lost_writes(Some(at(1, 200))), 0);
    }

    #[test]
    fn sibling_branches_share_only_what_precedes_their_forks() {
        let mut history = History::default();
        history.acknowledge(0, 0, 1_000);
        let left = history.fork(at(0, 600));
        let right = history.fork(at(0, 800));
        history.acknowledge(left.branch, 600, 900);
        history.acknowledge(right.branch, 800, 1_200);
        let (left_end, right_end) = (at(left.branch, 900), at(right.branch, 1_200));
        assert!(history.contains(left_end, at(0, 600)));
        assert!(!history.contains(left_end, at(0, 700)));
        assert!(history.contains(right_end, at(0, 800)));
        assert!(!history.contains(right_end, at(0, 900)));
        assert!(!history.contains(left_end, at(right.branch, 900)));
        assert!(!history.contains(right_end, at(left.branch, 700)));
        // A parent branch holds none of its children's writes.
        assert!(!history.contains(at(0, 1_000), at(left.branch, 700)));
        assert!(!history.is_prefix(left_end, right_end));
        assert!(!history.is_prefix(right_end, left_end));
        assert!(history.is_prefix(at(0, 600), right_end));
        assert!(history.is_prefix(at(0, 800), right_end));
        assert!(!history.is_prefix(at(0, 900), right_end));
        // Every copy lacks what the others wrote after the forks.
        assert_eq!(history.lost_writes(Some(left_end)), 4 + 4);
        assert_eq!(history.lost_writes(Some(right_end)), 2 + 3);
        assert_eq!(history.lost_writes(Some(at(0, 1_000))), 3 + 4);
        assert_eq!(history.lost_writes(None), 17);
    }

    /// A fork of a fork: what a copy holds of an old branch is bounded by every fork on the way.
    #[test]
    fn a_chain_of_forks_bounds_what_a_copy_holds_by_the_lowest_fork() {
        let mut history = History::default();
        history.acknowledge(0, 0, 1_000);
        let first = history.fork(at(0, 800));
        history.acknowledge(first.branch, 800, 1_500);
        let second = history.fork(at(first.branch, 1_200));
        let end = at(second.branch, 2_000);
        history.acknowledge(second.branch, 1_200, 2_000);
        assert!(history.contains(end, at(0, 800)));
        assert!(!history.contains(end, at(0, 900)));
        assert!(history.contains(end, at(first.branch, 1_200)));
        assert!(!history.contains(end, at(first.branch, 1_300)));
        assert_eq!(history.lost_writes(Some(end)), 2 + 3);
        // A copy behind the second fork, on the first branch, replicates from the end.
        assert!(history.is_prefix(at(first.branch, 1_100), end));
        assert!(!history.is_prefix(at(first.branch, 1_300), end));
        // A fork below the parent's own fork point still holds only the parent's past.
        let low = history.fork(at(first.branch, 500));
        assert!(history.contains(low, at(0, 500)));
        assert!(!history.contains(low, at(0, 600)));
        assert!(!history.contains(low, at(first.branch, 900)));
    }

    #[test]
    fn lost_writes_counts_what_a_trailing_copy_lacks_and_nothing_beyond() {
        let mut history = History::default();
        history.acknowledge(0, 0, 1_000);
        assert_eq!(history.lost_writes(Some(at(0, 1_000))), 0);
        assert_eq!(history.lost_writes(Some(at(0, 700))), 3);
        assert_eq!(history.lost_writes(Some(at(0, 0))), 10);
        // Unacknowledged writes a copy holds beyond the acknowledged ones count for nothing.
        assert_eq!(history.lost_writes(Some(at(0, 5_000))), 0);
        // A range that starts above the copy is lost whole, not more.
        history.acknowledge(0, 2_000, 2_300);
        assert_eq!(history.lost_writes(Some(at(0, 700))), 3 + 3);
        assert_eq!(history.lost_writes(Some(at(0, 1_500))), 3);
    }

    #[test]
    fn at_least_as_new_compares_the_acknowledged_writes_held() {
        let mut history = History::default();
        history.acknowledge(0, 0, 1_000);
        let (ahead, behind) = (at(0, 1_000), at(0, 600));
        assert!(history.at_least_as_new(ahead, behind));
        assert!(!history.at_least_as_new(behind, ahead));
        assert!(history.at_least_as_new(behind, behind));
        // Past the last acknowledged write, being further along counts for nothing.
        assert!(history.at_least_as_new(ahead, at(0, 9_000)));
        // Diverged copies: each holds writes the other lacks.
        let forked = history.fork(at(0, 600));
        history.acknowledge(forked.branch, 600, 800);
        let other = at(forked.branch, 800);
        assert!(!history.at_least_as_new(ahead, other));
        assert!(!history.at_least_as_new(other, ahead));
        assert!(history.at_least_as_new(other, behind));
    }

    /// The highest LSNs: a range ending at `u64::MAX`, and copies at it.
    #[test]
    fn positions_at_the_top_of_the_lsn_space() {
        let top = u64::MAX - u64::MAX % WRITE_BYTES;
        let mut history = History::default();
        history.acknowledge(0, top - 3 * WRITE_BYTES, top);
        assert_eq!(history.acknowledged_writes(), 3);
        assert_eq!(history.lost_writes(Some(at(0, u64::MAX))), 0);
        assert_eq!(history.lost_writes(Some(at(0, top - WRITE_BYTES))), 1);
        assert_eq!(history.lost_writes(Some(at(0, 0))), 3);
        assert_eq!(history.lost_writes(None), 3);
        assert!(history.contains(at(0, u64::MAX), at(0, u64::MAX)));
        assert!(!history.contains(at(0, top), at(0, u64::MAX)));
        let forked = history.fork(at(0, u64::MAX));
        assert_eq!(forked.lsn, u64::MAX);
        assert!(history.contains(forked, at(0, u64::MAX)));
        assert!(history.is_prefix(at(0, u64::MAX), forked));
        assert!(history.at_least_as_new(forked, at(0, top)));
        assert!(!history.at_least_as_new(at(0, 0), forked));
    }

    #[test]
    fn a_rewind_goes_back_to_the_last_shared_position_and_a_timeline_names_the_branch() {
        let mut history = History::default();
        // Branch 1 forks branch 0 at 800; branch 2 forks branch 1 at 1_500.
        let one = history.fork(at(0, 800));
        let two = history.fork(at(one.branch, 1_500));
        let leader = at(two.branch, 3_000);
        // The old active went on to 1_000 on branch 0: back to 800.
        assert_eq!(history.common(at(0, 1_000), leader), at(0, 800));
        // A copy behind the fork is a prefix: nothing is discarded.
        assert_eq!(history.common(at(0, 600), leader), at(0, 600));
        // On branch 1 past its fork by branch 2: back to 1_500.
        assert_eq!(
            history.common(at(one.branch, 2_000), leader),
            at(one.branch, 1_500)
        );
        // On the leader's own branch, behind it: kept.
        assert_eq!(
            history.common(at(two.branch, 2_500), leader),
            at(two.branch, 2_500)
        );
        // A branch the leader does not descend from goes back to where it forked off.
        let other = history.fork(at(one.branch, 1_200));
        assert_eq!(
            history.common(at(other.branch, 4_000), leader),
            at(one.branch, 1_200)
        );
        for holder in [at(0, 1_000), at(one.branch, 2_000), at(other.branch, 4_000)] {
            let common = history.common(holder, leader);
            assert!(history.is_prefix(common, leader), "{holder:?}");
            assert!(history.contains(holder, common), "{holder:?}");
        }
        assert_eq!(
            history.timeline(at(two.branch, 3_000)),
            Timeline {
                id: 3,
                parent: 2,
                branched_at: Lsn(1_500)
            }
        );
        assert_eq!(
            history.timeline(at(0, 10)),
            Timeline {
                id: 1,
                parent: 0,
                branched_at: Lsn(0)
            }
        );
    }
}
