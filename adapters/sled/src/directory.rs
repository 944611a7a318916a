//! The log's directory: the marker that says it is a tandem log, the lock that keeps a second
//! process out, and the `fsync`s that sled's own flush leaves out.

use crate::error::LogError;
use crate::witness::WITNESS_FILE;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker file, written last when a log is created: its presence means the log exists.
pub const MARKER_FILE: &str = "TANDEM_LOG";
/// The directory layout version this build writes and reads. Version 2 replaced the
/// watermarks, written with snapshots, by the witness, written with every append. Version 3
/// stores the records of an append in chunks, one sled value per chunk, instead of one sled
/// value per record. Logs of versions 1 and 2 are refused.
pub const LAYOUT_VERSION: u32 = 3;
const FORMAT_NAME: &str = "tandem-event-log";
const MARKER_TEMPORARY: &str = "TANDEM_LOG.tmp";
/// The subdirectory sled's files live in.
pub(crate) const SLED_DIRECTORY: &str = "sled";

/// Maps an I/O error on `path` to [`LogError::Io`], naming the operation.
pub(crate) fn io_error(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io {
        operation,
        path,
        source,
    }
}

/// A directory claimed for a log: locked, and known to be a tandem log or free to become one.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The directory, opened and `flock`ed for as long as the log is open.
    pub(crate) lock: File,
    /// Whether the marker was there: the log was created before, and completely.
    pub(crate) existing: bool,
}

/// Claims a directory for a log: checks that it is a tandem log (its marker) or may become one
/// (it is absent, empty, or holds what an interrupted creation leaves), and locks it.
///
/// The marker is written last when a log is created (see [`write_marker`]), so a marker means
/// the creation completed, and sled's data behind it must be there.
pub(crate) fn claim(path: &Path) -> Result<Claim, LogError> {
    create_directories(path)?;
    let marker = path.join(MARKER_FILE);
    let existing = marker.exists();
    if !existing {
        let foreign = entries(path)?.into_iter().find(|name| {
            name != MARKER_TEMPORARY && name != SLED_DIRECTORY && name != WITNESS_FILE
        });
        if let Some(name) = foreign {
            return Err(LogError::NotATandemLog {
                path: path.to_path_buf(),
                detail: format!("it holds {name:?} but no {MARKER_FILE} marker"),
            });
        }
    }
    let lock = File::open(path).map_err(io_error("open", path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LogError::Locked {
                path: path.to_path_buf(),
            });
        }
        Err(TryLockError::Error(source)) => return Err(io_error("lock", path)(source)),
    }
    if existing {
        check_marker(path, &marker)?;
    }
    Ok(Claim { lock, existing })
}

/// Creates `path` and whatever of its ancestors is missing, and makes each new directory's
/// entry durable (an `fsync` of the directory that holds it), from the deepest up, so that a
/// power loss cannot leave the log's files under a directory that is not there.
fn create_directories(path: &Path) -> Result<(), LogError> {
    let mut missing = Vec::new();
    let mut ancestor = Some(path);
    while let Some(directory) = ancestor.filter(|directory| !directory.as_os_str().is_empty()) {
        if directory.exists() {
            break;
        }
        missing.push(directory);
        ancestor = directory.parent();
    }
    fs::create_dir_all(path).map_err(io_error("create directory", path))?;
    for directory in missing {
        if let Some(parent) = directory
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(parent)?;
        }
    }
    Ok(())
}

/// Copies the log in `path` into `to` for reading it without writing to it: the witness first,
/// so that records appended meanwhile by a process that has the log open only make the copy
/// longer than its witness claims, then the marker and sled's files. Refuses a directory that
/// holds no log (no marker) or a log of another layout, before copying anything.
pub(crate) fn copy_log(path: &Path, to: &Path) -> Result<(), LogError> {
    let marker = path.join(MARKER_FILE);
    if !marker.is_file() {
        return Err(LogError::NoLog {
            path: path.to_path_buf(),
        });
    }
    check_marker(path, &marker)?;
    let witness = path.join(WITNESS_FILE);
    if witness.exists() {
        fs::copy(&witness, to.join(WITNESS_FILE)).map_err(io_error("copy", &witness))?;
    }
    fs::copy(&marker, to.join(MARKER_FILE)).map_err(io_error("copy", &marker))?;
    copy_tree(&path.join(SLED_DIRECTORY), &to.join(SLED_DIRECTORY))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::create_dir_all(to).map_err(io_error("create directory", to))?;
    let listing = fs::read_dir(from).map_err(io_error("list", from))?;
    for entry in listing {
        let entry = entry.map_err(io_error("list", from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io_error("stat", &source))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            match fs::copy(&source, &target) {
                Ok(_) => {}
                // sled removes old page-table snapshots as it writes new ones.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source_error) => return Err(io_error("copy", &source)(source_error)),
            }
        }
    }
    Ok(())
}

fn entries(path: &Path) -> Result<Vec<String>, LogError> {
    let read = fs::read_dir(path).map_err(io_error("list", path))?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(io_error("list", path))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Writes the marker atomically (temporary file, `fsync`, rename, `fsync` of the directory),
/// so a crash leaves either no marker or a whole one. Called once sled's files and the format
/// key in them are durable.
pub(crate) fn write_marker(path: &Path) -> Result<(), LogError> {
    let temporary = path.join(MARKER_TEMPORARY);
    let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
    file.write_all(format!("{FORMAT_NAME} {LAYOUT_VERSION}\n").as_bytes())
        .map_err(io_error("write", &temporary))?;
    file.sync_all().map_err(io_error("fsync", &temporary))?;
    let marker = path.join(MARKER_FILE);
    fs::rename(&temporary, &marker).map_err(io_error("rename", &marker))?;
    sync_directory(path)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        sync_directory(parent)?;
    }
    Ok(())
}

pub(crate) fn check_marker(path: &Path, marker: &Path) -> Result<(), LogError> {
    let text = fs::read(marker).map_err(io_error("read", marker))?;
    let text = String::from_utf8_lossy(&text);
    let not_ours = || LogError::NotATandemLog {
        path: path.to_path_buf(),
        detail: format!("{MARKER_FILE} holds {:?}", text.trim_end()),
    };
    let (name, version) = text.trim_end().split_once(' ').ok_or_else(not_ours)?;
    if name != FORMAT_NAME {
        return Err(not_ours());
    }
    let found: u32 = version.parse().map_err(|_| not_ours())?;
    if found != LAYOUT_VERSION {
        return Err(LogError::UnsupportedLayout {
            path: path.to_path_buf(),
            found,
            supported: LAYOUT_VERSION,
        });
    }
    Ok(())
}

/// `fsync` of a directory, which makes the creation, renaming and removal of its entries durable.
pub(crate) fn sync_directory(path: &Path) -> Result<(), LogError> {
    let directory = File::open(path).map_err(io_error("open", path))?;
    directory.sync_all().map_err(io_error("fsync", path))
}

/// Completes sled's flush into a durable one.
///
/// sled 0.34.7 writes its log into the file `db` with `pwrite` followed by `sync_file_range`,
/// which starts and waits for the write-back of the written range but neither flushes the
/// device's volatile write cache nor makes the file's new size durable. `fdatasync` does both.
/// sled's other files (`conf`, its page-table snapshots `snap.*`, large values under `blobs/`)
/// come and go by creation, rename and removal: each new one is `fsync`ed, and so is its
/// directory whenever its list of entries changed.
#[derive(Debug)]
pub(crate) struct DurableFiles {
    sled_path: PathBuf,
    db: File,
    synced: BTreeSet<(PathBuf, OsString)>,
}

impl DurableFiles {
    /// Opens sled's `db` file for `fdatasync` (a second descriptor: sled's `flock` is on its
    /// own open file description, which this one leaves alone).
    pub(crate) fn open(sled_path: &Path) -> Result<DurableFiles, LogError> {
        let db_path = sled_path.join("db");
        let db = File::open(&db_path).map_err(io_error("open", &db_path))?;
        Ok(DurableFiles {
            sled_path: sled_path.to_path_buf(),
            db,
            synced: BTreeSet::new(),
        })
    }

    /// Makes everything sled has written durable.
    pub(crate) fn sync(&mut self) -> Result<(), LogError> {
        let blobs = self.sled_path.join("blobs");
        self.sync_entries(&self.sled_path.clone())?;
        if blobs.is_dir() {
            self.sync_entries(&blobs)?;
        }
        let db_path = || self.sled_path.join("db");
        self.db.sync_data().map_err(|source| LogError::Io {
            operation: "fdatasync",
            path: db_path(),
            source,
        })
    }

    /// `fsync`s the files of `directory` not seen before, and the directory if its entries
    /// changed. Listing a directory of a handful of entries costs microseconds; an `fsync`
    /// costs a device flush, so it is only paid on change.
    fn sync_entries(&mut self, directory: &Path) -> Result<(), LogError> {
        let listing = fs::read_dir(directory).map_err(io_error("list", directory))?;
        let mut current = BTreeSet::new();
        for entry in listing {
            let entry = entry.map_err(io_error("list", directory))?;
            current.insert((directory.to_path_buf(), entry.file_name()));
        }
        let before: BTreeSet<_> = self
            .synced
            .iter()
            .filter(|(parent, _)| parent == directory)
            .cloned()
            .collect();
        if before == current {
            return Ok(());
        }
        for (parent, name) in current.difference(&before) {
            let path = parent.join(name);
            if !path.is_file() || path.file_name() == Some("db".as_ref()) {
                continue;
            }
            // sled removes its old page-table snapshots as it writes new ones: a file gone
            // since the listing needs no fsync, the directory's fsync covers its removal.
            match File::open(&path) {
                Ok(file) => file.sync_all().map_err(io_error("fsync", &path))?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("open", &path)(source)),
            }
        }
        sync_directory(directory)?;
        self.synced.retain(|(parent, _)| parent != directory);
        self.synced.extend(current);
        Ok(())
    }
}
