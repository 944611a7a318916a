//! Starts processes so that none outlives the test run.
//!
//! Every process goes into one process group, led by a small watchdog shell that polls the test
//! binary and kills the whole group as soon as the binary is gone, however it went: a normal
//! exit, a panic, Ctrl-C, or `kill -9`. On the orderly path [`Supervisor::stop`] (also run on
//! drop) stops the processes itself, by their ids, in reverse start order, then the group.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How often the watchdog checks that the test binary is still alive.
const WATCHDOG_POLL: &str = "0.2";
/// The most log text quoted in an error about a process.
const LOG_TAIL_BYTES_MAX: usize = 4000;

/// The watchdog: ignores the signals a terminal sends, waits for its parent (`$1`) to go, then
/// kills its own process group, which holds every process the harness started.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep "$2"; done
kill -KILL 0"#;

/// A process the supervisor started.
struct Managed {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Owns the process group of the control plane.
pub struct Supervisor {
    watchdog: Child,
    group: u32,
    processes: Vec<Managed>,
    logs: PathBuf,
}

/// A process that exited while it should have been running.
#[derive(Debug, thiserror::Error)]
#[error("{name} exited ({status}); the end of its log {log}:\n{tail}")]
pub struct Exited {
    /// Which process.
    pub name: String,
    /// How it exited.
    pub status: String,
    /// Its log file.
    pub log: String,
    /// The end of the log.
    pub tail: String,
}

impl Supervisor {
    /// Starts the watchdog for the current process; logs go under `logs`.
    pub fn new(logs: &Path) -> std::io::Result<Self> {
        Self::watching(std::process::id(), logs)
    }

    /// Starts a watchdog that kills the group when the process `parent` is gone.
    pub fn watching(parent: u32, logs: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(logs)?;
        let watchdog = Command::new("sh")
            .args([
                "-c",
                WATCHDOG,
                "tandem-watchdog",
                &parent.to_string(),
                WATCHDOG_POLL,
            ])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let group = watchdog.id();
        Ok(Self {
            watchdog,
            group,
            processes: Vec::new(),
            logs: logs.to_owned(),
        })
    }

    /// The process group every started process belongs to.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// Starts `command` in the group, its output going to `<logs>/<name>.log`.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> std::io::Result<u32> {
        let log = self.logs.join(format!("{name}.log"));
        let output = File::create(&log)?;
        let child = command
            .process_group(i32::try_from(self.group).unwrap_or(0))
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()?;
        let id = child.id();
        self.processes.push(Managed {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(id)
    }

    /// Fails if any started process has exited.
    pub fn check_running(&mut self) -> Result<(), Exited> {
        for process in &mut self.processes {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(Exited {
                    name: process.name.clone(),
                    status: status.to_string(),
                    log: process.log.display().to_string(),
                    tail: log_tail(&process.log),
                });
            }
        }
        Ok(())
    }

    /// The ids of the processes started and still owned, with their names.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let listed = self
            .processes
            .iter()
            .map(|process| (process.name.clone(), process.child.id()));
        listed.collect()
    }

    /// Stops every process, newest first, then the watchdog and anything left in the group.
    pub fn stop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        // The group may still hold the watchdog's `sleep`; kill them all, then reap the watchdog.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .stderr(Stdio::null())
            .status();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The end of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(LOG_TAIL_BYTES_MAX);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// The processes, other than the current one, whose command line mentions `marker`: what
/// would be an orphan once the harness has stopped everything.
pub fn processes_mentioning(marker: &str) -> Vec<(u32, String)> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
        if pid != own && command_line.contains(marker) {
            found.push((pid, command_line));
        }
    }
    found
}

/// Waits, at most `limit`, until no process mentions `marker`; returns those that remain.
pub fn wait_for_no_process_mentioning(marker: &str, limit: Duration) -> Vec<(u32, String)> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let found = processes_mentioning(marker);
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
