//! Watermarks: for each stream, a sequence number known to be acknowledged, kept in a file
//! beside sled's so that sled losing the end of its log is noticed.
//!
//! sled takes the first damaged message in its file for the torn end of its log and recovers
//! what precedes it, silently. A stream that recovers to less than its watermark has lost
//! acknowledged records: that is [`LogError::Damaged`]. The watermark is raised after the
//! durable flush of every append that wrote a snapshot, so keeping it costs a few `fsync`s
//! every `snapshot_every_records` records, and at most that many records plus one append can
//! be lost unnoticed.

use crate::directory::sync_directory;
use crate::error::LogError;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use tandem_engine::Seq;

/// The file, one line per stream: `<seq> <stream>`.
pub const WATERMARK_FILE: &str = "WATERMARKS";
const WATERMARK_TEMPORARY: &str = "WATERMARKS.tmp";

/// The watermarks of a log, as loaded and raised.
#[derive(Debug)]
pub(crate) struct Watermarks {
    directory: PathBuf,
    marks: BTreeMap<String, Seq>,
}

impl Watermarks {
    /// Reads the watermarks of the log in `directory` (none when the file does not exist).
    pub(crate) fn load(directory: &Path) -> Result<Watermarks, LogError> {
        let path = directory.join(WATERMARK_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(LogError::Io {
                    operation: "read",
                    path,
                    source,
                });
            }
        };
        let mut marks = BTreeMap::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(seq, stream)| Some((stream, seq.parse::<u64>().ok()?)));
            let Some((stream, seq)) = parsed else {
                return Err(LogError::Damaged {
                    path: path.clone(),
                    detail: format!("malformed watermark line {line:?}"),
                });
            };
            marks.insert(stream.to_string(), Seq(seq));
        }
        Ok(Watermarks {
            directory: directory.to_path_buf(),
            marks,
        })
    }

    /// Checks that a stream recovered at least to its watermark.
    pub(crate) fn check(&self, stream: &str, tail: Seq) -> Result<(), LogError> {
        match self.marks.get(stream) {
            Some(mark) if tail < *mark => Err(LogError::Damaged {
                path: self.directory.clone(),
                detail: format!(
                    "stream {stream} ends at record {tail}, but record {mark} was acknowledged: \
                     sled lost the end of its log"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Raises a stream's watermark to `seq`, which must be durable, and writes the file.
    pub(crate) fn raise(&mut self, stream: &str, seq: Seq) -> Result<(), LogError> {
        if self.marks.get(stream).is_some_and(|mark| *mark >= seq) {
            return Ok(());
        }
        self.marks.insert(stream.to_string(), seq);
        self.write()
    }

    /// Forgets a stream's watermark (the stream is being removed), durably.
    pub(crate) fn forget(&mut self, stream: &str) -> Result<(), LogError> {
        if self.marks.remove(stream).is_none() {
            return Ok(());
        }
        self.write()
    }

    /// Writes the file atomically (temporary file, `fsync`, rename, `fsync` of the directory).
    fn write(&self) -> Result<(), LogError> {
        let mut text = String::new();
        for (stream, seq) in &self.marks {
            text.push_str(&format!("{seq} {stream}\n"));
        }
        let temporary = self.directory.join(WATERMARK_TEMPORARY);
        let io = |operation, path: &Path| {
            let path = path.to_path_buf();
            move |source| LogError::Io {
                operation,
                path,
                source,
            }
        };
        let mut file = File::create(&temporary).map_err(io("create", &temporary))?;
        file.write_all(text.as_bytes())
            .map_err(io("write", &temporary))?;
        file.sync_all().map_err(io("fsync", &temporary))?;
        let path = self.directory.join(WATERMARK_FILE);
        fs::rename(&temporary, &path).map_err(io("rename", &path))?;
        sync_directory(&self.directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_survive_a_reload_and_catch_a_short_stream() -> Result<(), LogError> {
        let directory = tempfile::tempdir().map_err(|source| LogError::Io {
            operation: "create",
            path: PathBuf::new(),
            source,
        })?;
        let mut marks = Watermarks::load(directory.path())?;
        marks.raise("ns/a b", Seq(40))?;
        marks.raise("ns/a b", Seq(30))?;
        let marks = Watermarks::load(directory.path())?;
        assert!(marks.check("ns/a b", Seq(40)).is_ok());
        assert!(matches!(
            marks.check("ns/a b", Seq(39)),
            Err(LogError::Damaged { .. })
        ));
        assert!(marks.check("other", Seq(0)).is_ok());
        let file = directory.path().join(WATERMARK_FILE);
        fs::write(&file, "x y\n").map_err(|source| LogError::Io {
            operation: "write",
            path: file,
            source,
        })?;
        assert!(matches!(
            Watermarks::load(directory.path()),
            Err(LogError::Damaged { .. })
        ));
        Ok(())
    }
}
