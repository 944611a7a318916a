//! What can be wrong with a scenario file. Every message names the file, the 1-based line and,
//! but for unreadable YAML, the key (a path such as `timeline[2].fault`), because people write
//! these files by hand.

use std::path::PathBuf;

/// A scenario file that cannot be read, or says something the simulator will not guess about.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path names a directory, a FIFO, a device or a socket, not a regular file.
    #[error("{}: cannot read: it is {kind}, not a regular file", file.display())]
    NotAFile {
        /// The path.
        file: PathBuf,
        /// What it names instead.
        kind: &'static str,
    },
    /// The file is larger than [`super::MAX_FILE_BYTES`].
    #[error(
        "{}: cannot read: it is larger than {} bytes, the most a scenario file may have",
        file.display(),
        super::MAX_FILE_BYTES
    )]
    TooLarge {
        /// The file.
        file: PathBuf,
    },
    /// The text is not YAML the parser accepts.
    #[error("{}:{line}: invalid YAML: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The parser's message.
        message: String,
    },
    /// A required key is absent.
    #[error("{}:{line}: {key}: missing ({why})", file.display())]
    MissingKey {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the mapping that lacks it.
        line: u32,
        /// The path of the missing key.
        key: String,
        /// Why it is required here.
        why: String,
    },
    /// A key the language does not have there, written twice, or a value it refuses: of the
    /// wrong kind, malformed, out of range, naming what does not exist, or breaking a rule of
    /// the engine's configuration.
    #[error("{}:{line}: {key}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What is wrong, and what would be right.
        message: String,
    },
}

impl ScenarioError {
    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            ScenarioError::Read { file, .. }
            | ScenarioError::NotAFile { file, .. }
            | ScenarioError::TooLarge { file, .. }
            | ScenarioError::Syntax { file, .. }
            | ScenarioError::MissingKey { file, .. }
            | ScenarioError::Invalid { file, .. } => file,
        }
    }

    /// The 1-based line, for every error but an unreadable file.
    pub fn line(&self) -> Option<u32> {
        match self {
            ScenarioError::Read { .. }
            | ScenarioError::NotAFile { .. }
            | ScenarioError::TooLarge { .. } => None,
            ScenarioError::Syntax { line, .. }
            | ScenarioError::MissingKey { line, .. }
            | ScenarioError::Invalid { line, .. } => Some(*line),
        }
    }

    /// The path of the key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::Read { .. }
            | ScenarioError::NotAFile { .. }
            | ScenarioError::TooLarge { .. }
            | ScenarioError::Syntax { .. } => None,
            ScenarioError::MissingKey { key, .. } | ScenarioError::Invalid { key, .. } => Some(key),
        }
    }
}
