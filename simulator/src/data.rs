//! The ground truth about data: which writes a copy holds, and which acknowledged writes were
//! lost.
//!
//! A copy of the database is a position on a *branch* of history. Promoting a member starts a
//! new branch from its position, so a former active that kept accepting writes after a
//! promotion (a split brain) diverges visibly. Positions are LSNs in bytes; every write is
//! [`WRITE_BYTES`] long.

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
        let lost_bytes: u64 = self
            .acked
            .iter()
            .map(|range| {
                let held = holder.and_then(|holder| self.highest_on(holder, range.branch));
                let kept = held.map_or(range.from, |lsn| lsn.clamp(range.from, range.to));
                range.to - kept
            })
            .sum();
        lost_bytes / WRITE_BYTES
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
}
