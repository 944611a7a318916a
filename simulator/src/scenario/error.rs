//! What can be wrong with a scenario file. Every message names the file, the 1-based line and
//! the key (a path such as `timeline[2].fault`), because people write these files by hand.

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
    /// A key the language does not have at this place.
    #[error("{}:{line}: {key}: unknown key (expected one of {expected})", file.display())]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// The keys allowed there, comma-separated.
        expected: String,
    },
    /// A key written twice in one mapping.
    #[error("{}:{line}: {key}: written twice", file.display())]
    DuplicateKey {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the second one.
        line: u32,
        /// The path of the key.
        key: String,
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
    /// A value of the wrong kind (a list where a number belongs, a quoted number, ...).
    #[error("{}:{line}: {key}: expected {expected}, found {found}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What belongs there.
        expected: &'static str,
        /// What was written.
        found: String,
    },
    /// A `fault:` the language does not have.
    #[error(
        "{}:{line}: {key}: unknown fault {name:?} (expected one of {expected})",
        file.display()
    )]
    UnknownFault {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What was written.
        name: String,
        /// The faults, comma-separated.
        expected: String,
    },
    /// An `action:` the language does not have.
    #[error(
        "{}:{line}: {key}: unknown action {name:?} (expected one of {expected})",
        file.display()
    )]
    UnknownAction {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What was written.
        name: String,
        /// The actions, comma-separated.
        expected: String,
    },
    /// A duration not written as `500ms`, `30s`, `2m` or `1h`.
    #[error(
        "{}:{line}: {key}: malformed duration {text:?} (write a whole number and a unit: 500ms, \
         30s, 2m, 1h)",
        file.display()
    )]
    MalformedDuration {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What was written.
        text: String,
    },
    /// A value of the right kind but outside what it may be.
    #[error("{}:{line}: {key}: {message}", file.display())]
    OutOfRange {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What the value may be.
        message: String,
    },
    /// A key this fault or action does not take (a target for `operator-crash`, a `period` for
    /// `partition`), or a target of the wrong kind for it.
    #[error("{}:{line}: {key}: {message}", file.display())]
    NotAccepted {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What the entry takes instead.
        message: String,
    },
    /// A cluster state name that is not one.
    #[error("{}:{line}: {key}: {message}", file.display())]
    UnknownState {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u32,
        /// The path of the key.
        key: String,
        /// What is wrong with the name.
        message: String,
    },
    /// The `cluster:` block, over the defaults, breaks a rule of the engine's configuration.
    #[error("{}:{line}: {key}: {message}", file.display())]
    InvalidCluster {
        /// The file.
        file: PathBuf,
        /// The 1-based line of the offending field, or of `cluster:`.
        line: u32,
        /// The path of the field.
        key: String,
        /// The engine's message (identical to the CRD's).
        message: String,
    },
}

impl ScenarioError {
    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            ScenarioError::Read { file, .. }
            | ScenarioError::Syntax { file, .. }
            | ScenarioError::UnknownKey { file, .. }
            | ScenarioError::DuplicateKey { file, .. }
            | ScenarioError::MissingKey { file, .. }
            | ScenarioError::WrongType { file, .. }
            | ScenarioError::UnknownFault { file, .. }
            | ScenarioError::UnknownAction { file, .. }
            | ScenarioError::MalformedDuration { file, .. }
            | ScenarioError::OutOfRange { file, .. }
            | ScenarioError::NotAccepted { file, .. }
            | ScenarioError::UnknownState { file, .. }
            | ScenarioError::InvalidCluster { file, .. } => file,
        }
    }

    /// The 1-based line, for every error but an unreadable file.
    pub fn line(&self) -> Option<u32> {
        match self {
            ScenarioError::Read { .. } => None,
            ScenarioError::Syntax { line, .. }
            | ScenarioError::UnknownKey { line, .. }
            | ScenarioError::DuplicateKey { line, .. }
            | ScenarioError::MissingKey { line, .. }
            | ScenarioError::WrongType { line, .. }
            | ScenarioError::UnknownFault { line, .. }
            | ScenarioError::UnknownAction { line, .. }
            | ScenarioError::MalformedDuration { line, .. }
            | ScenarioError::OutOfRange { line, .. }
            | ScenarioError::NotAccepted { line, .. }
            | ScenarioError::UnknownState { line, .. }
            | ScenarioError::InvalidCluster { line, .. } => Some(*line),
        }
    }

    /// The path of the key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::Read { .. } | ScenarioError::Syntax { .. } => None,
            ScenarioError::UnknownKey { key, .. }
            | ScenarioError::DuplicateKey { key, .. }
            | ScenarioError::MissingKey { key, .. }
            | ScenarioError::WrongType { key, .. }
            | ScenarioError::UnknownFault { key, .. }
            | ScenarioError::UnknownAction { key, .. }
            | ScenarioError::MalformedDuration { key, .. }
            | ScenarioError::OutOfRange { key, .. }
            | ScenarioError::NotAccepted { key, .. }
            | ScenarioError::UnknownState { key, .. }
            | ScenarioError::InvalidCluster { key, .. } => Some(key),
        }
    }
}
