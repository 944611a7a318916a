//! Group commit: appenders that arrive while a durable flush runs share the next one.
//!
//! Each appender first writes its records into sled's memory, then asks for durability. A
//! flush covers every write made before it *started*, so an appender waits for the first
//! flush that starts after its write. Whoever finds no flush running becomes the leader and
//! runs one for everybody; the others wait on a condition variable. A lone appender therefore
//! pays exactly one flush, and under load one flush serves every appender that arrived during
//! the previous one.

use crate::error::LogError;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Flush generations: how many flushes started, how many completed.
#[derive(Debug, Default)]
struct Generations {
    started: u64,
    completed: u64,
    flushing: bool,
    /// A failed flush poisons the log: what reached the disk is unknown.
    failure: Option<String>,
}

/// The shared flush state.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    generations: Mutex<Generations>,
    finished: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, Generations> {
        // The state stays consistent across a panicking holder: every update is one assignment.
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The failure that poisoned the log, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// Returns once a flush that started after this call has completed, running it with
    /// `flush` if no other thread is flushing. `poisoned` builds the error for a failed flush.
    pub(crate) fn wait_durable(
        &self,
        flush: impl Fn() -> Result<(), LogError>,
        poisoned: impl Fn(String) -> LogError,
    ) -> Result<(), LogError> {
        let mut state = self.lock();
        let target = state.started + 1;
        loop {
            if let Some(cause) = &state.failure {
                return Err(poisoned(cause.clone()));
            }
            if state.completed >= target {
                return Ok(());
            }
            if state.flushing {
                state = self
                    .finished
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.flushing = true;
            state.started += 1;
            let generation = state.started;
            drop(state);
            let outcome = flush();
            state = self.lock();
            state.flushing = false;
            match outcome {
                Ok(()) => state.completed = generation,
                Err(error) => {
                    state.failure = Some(error.to_string());
                    self.finished.notify_all();
                    return Err(error);
                }
            }
            self.finished.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn a_lone_appender_pays_one_flush() {
        let group = GroupCommit::default();
        let flushes = AtomicU64::new(0);
        for _ in 0..3 {
            let flush = || {
                flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            };
            let poisoned = |cause| LogError::Poisoned {
                path: "x".into(),
                cause,
            };
            assert!(group.wait_durable(flush, poisoned).is_ok());
        }
        assert_eq!(flushes.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn concurrent_appenders_share_flushes_and_a_failure_poisons() {
        let group = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let group = Arc::clone(&group);
                let flushes = Arc::clone(&flushes);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let flush = || {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Ok(())
                        };
                        let poisoned = |cause| LogError::Poisoned {
                            path: "x".into(),
                            cause,
                        };
                        group
                            .wait_durable(flush, poisoned)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().ok(), Some(Ok(())));
        }
        let total = flushes.load(Ordering::SeqCst);
        assert!(total < 400, "8 x 50 appends shared flushes: {total}");
        let failing = || {
            Err(LogError::Poisoned {
                path: "x".into(),
                cause: "disk on fire".into(),
            })
        };
        let poisoned = |cause| LogError::Poisoned {
            path: "x".into(),
            cause,
        };
        assert!(group.wait_durable(failing, poisoned).is_err());
        assert!(group.wait_durable(|| Ok(()), poisoned).is_err());
        assert!(group.failure().is_some());
    }
}
