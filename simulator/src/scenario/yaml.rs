//! A small YAML tree with the 1-based line of every node, built from the event parser.
//!
//! The scenario parser needs a line for each key and value so that every error names one; a
//! typed deserializer loses them. The tree is deliberately plain: scalars keep their text and
//! whether they were quoted, and types are resolved later against what each key expects.

use granit_parser::{Event, Parser, ScalarStyle, Span};

/// How deeply collections may nest. Scenario files need four levels; the limit keeps a hostile
/// file from exhausting the stack when the tree is dropped.
pub const MAX_DEPTH: usize = 32;

/// A node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The 1-based line the node starts on.
    pub line: u32,
    /// What it is.
    pub value: Value,
}

/// The three kinds of YAML nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar: its text, and whether it was written plain (unquoted, not a block scalar), which
    /// decides whether `7` is a number or a string.
    Scalar {
        /// The text after escape processing.
        text: String,
        /// Whether the scalar was plain.
        plain: bool,
    },
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping, in the order written.
    Mapping(Vec<(Node, Node)>),
}

/// Why the text is not a YAML document the scenario parser can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

impl SyntaxError {
    fn new(line: u32, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line,
            message: message.into(),
        }
    }
}

/// A collection being filled while its events arrive.
enum Open {
    Sequence(u32, Vec<Node>),
    Mapping(u32, Vec<(Node, Node)>, Option<Node>),
}

/// Parses one YAML document. An empty document is `None`.
pub fn read(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0_u32;
    while let Some(next) = parser.next_event() {
        let (event, span) =
            next.map_err(|error| SyntaxError::new(to_line(error.marker().line()), error.info()))?;
        let line = line_of(&span);
        let finished = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError::new(line, "a scenario file holds one document"));
                }
                None
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                return Err(SyntaxError::new(line, "aliases (*name) are not supported"));
            }
            Event::Scalar(text, style, _, tag) => {
                refuse_tag(tag.is_some(), line)?;
                Some(Node {
                    line,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                })
            }
            Event::SequenceStart(_, _, tag) => {
                refuse_tag(tag.is_some(), line)?;
                open(&mut stack, Open::Sequence(line, Vec::new()), line)?;
                None
            }
            Event::MappingStart(_, _, tag) => {
                refuse_tag(tag.is_some(), line)?;
                open(&mut stack, Open::Mapping(line, Vec::new(), None), line)?;
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(close),
            _ => None,
        };
        if let Some(node) = finished {
            place(&mut stack, &mut root, node);
        }
    }
    Ok(root)
}

/// Tags (`!!str`, `!custom`) would change what a value means; the language has no use for them.
fn refuse_tag(tagged: bool, line: u32) -> Result<(), SyntaxError> {
    if tagged {
        return Err(SyntaxError::new(line, "tags (!name) are not supported"));
    }
    Ok(())
}

fn open(stack: &mut Vec<Open>, collection: Open, line: u32) -> Result<(), SyntaxError> {
    if stack.len() >= MAX_DEPTH {
        return Err(SyntaxError::new(
            line,
            format!("collections nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    stack.push(collection);
    Ok(())
}

fn close(collection: Open) -> Node {
    match collection {
        Open::Sequence(line, items) => Node {
            line,
            value: Value::Sequence(items),
        },
        // The parser pairs every key with a value (an empty one is a null scalar), so a pending
        // key cannot be left over here.
        Open::Mapping(line, entries, _) => Node {
            line,
            value: Value::Mapping(entries),
        },
    }
}

/// Puts a finished node into the collection being filled, or makes it the document.
fn place(stack: &mut [Open], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Open::Sequence(_, items)) => items.push(node),
        Some(Open::Mapping(_, entries, pending)) => match pending.take() {
            None => *pending = Some(node),
            Some(key) => entries.push((key, node)),
        },
    }
}

fn line_of(span: &Span) -> u32 {
    to_line(span.start.line())
}

fn to_line(line: usize) -> u32 {
    u32::try_from(line.max(1)).unwrap_or(u32::MAX)
}

impl Node {
    /// The scalar's text, if the node is a scalar.
    pub fn scalar(&self) -> Option<(&str, bool)> {
        match &self.value {
            Value::Scalar { text, plain } => Some((text, *plain)),
            _ => None,
        }
    }

    /// Whether the node is YAML's null (`~`, `null` or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(self.scalar(), Some((text, true)) if is_null_text(text))
    }

    /// What the node is, for messages: `a mapping`, `an integer`, `the string "x"`.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Sequence(_) => "a list".to_owned(),
            Value::Mapping(_) => "a mapping".to_owned(),
            Value::Scalar { text, plain } => match (plain, plain_kind(text)) {
                (true, PlainKind::Null) => "nothing".to_owned(),
                (true, PlainKind::Bool) => format!("the boolean {text}"),
                (true, PlainKind::Integer) => format!("the integer {text}"),
                (true, PlainKind::Float) => format!("the number {text}"),
                _ => format!("the string {text:?}"),
            },
        }
    }
}

/// What a plain scalar is under YAML 1.2's core schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainKind {
    /// `~`, `null`, empty.
    Null,
    /// `true`, `false` (three spellings each).
    Bool,
    /// Decimal, `0o` octal or `0x` hexadecimal.
    Integer,
    /// A decimal fraction or exponent, `.inf`, `.nan`.
    Float,
    /// Anything else.
    String,
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Resolves a plain scalar as the core schema does.
pub fn plain_kind(text: &str) -> PlainKind {
    if is_null_text(text) {
        PlainKind::Null
    } else if matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE") {
        PlainKind::Bool
    } else if parse_integer(text).is_some() || is_integer_syntax(text) {
        PlainKind::Integer
    } else if is_float_syntax(text) {
        PlainKind::Float
    } else {
        PlainKind::String
    }
}

fn is_integer_syntax(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let radix = |prefix: &str, radix: u32| {
        text.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_digit(radix)))
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        || radix("0o", 8)
        || radix("0x", 16)
}

/// The value of a core-schema integer, when it fits in an `i128` (every `u64` does).
pub fn parse_integer(text: &str) -> Option<i128> {
    if let Some(rest) = text.strip_prefix("0o") {
        return i128::from_str_radix(rest, 8)
            .ok()
            .filter(|_| !rest.starts_with(['+', '-']));
    }
    if let Some(rest) = text.strip_prefix("0x") {
        return i128::from_str_radix(rest, 16)
            .ok()
            .filter(|_| !rest.starts_with(['+', '-']));
    }
    if !is_integer_syntax(text) {
        return None;
    }
    text.parse::<i128>().ok()
}

fn is_float_syntax(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let body = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
    if body == ".inf" || lower == ".nan" {
        return true;
    }
    let (mantissa, exponent) = match body.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (body, None),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    exponent_ok
        && digits_ok(whole)
        && digits_ok(fraction)
        && (!whole.is_empty() || !fraction.is_empty())
        && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_per_node() {
        let root = read("# comment\nname: x\nlist:\n  - a\n  - {b: 1}\n")
            .unwrap()
            .unwrap();
        let Value::Mapping(entries) = &root.value else {
            panic!("{root:?}")
        };
        assert_eq!(entries[0].0.line, 2);
        assert_eq!(entries[1].0.line, 3);
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!("{entries:?}")
        };
        assert_eq!(items[0].line, 4);
        assert_eq!(items[1].line, 5);
    }

    #[test]
    fn refuses_what_the_language_does_not_use() {
        assert!(
            read("a: &x 1\nb: *x\n")
                .unwrap_err()
                .message
                .contains("alias")
        );
        assert!(read("a: !!str 1\n").unwrap_err().message.contains("tags"));
        assert!(
            read("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("one document")
        );
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(read(&deep).unwrap_err().message.contains("nest"));
        assert_eq!(read("").unwrap(), None);
        assert_eq!(read("a: 1\nb: 2\n c: 3\n").unwrap_err().line, 3);
    }

    #[test]
    fn plain_scalars_resolve_as_the_core_schema_does() {
        for (text, kind) in [
            ("~", PlainKind::Null),
            ("", PlainKind::Null),
            ("True", PlainKind::Bool),
            ("yes", PlainKind::String),
            ("-12", PlainKind::Integer),
            ("0x1F", PlainKind::Integer),
            ("0o17", PlainKind::Integer),
            ("1.5", PlainKind::Float),
            ("1e3", PlainKind::Float),
            (".inf", PlainKind::Float),
            (".", PlainKind::String),
            ("30s", PlainKind::String),
            ("1_000", PlainKind::String),
        ] {
            assert_eq!(plain_kind(text), kind, "{text}");
        }
        assert_eq!(parse_integer("0x10"), Some(16));
        assert_eq!(parse_integer("+7"), Some(7));
        assert_eq!(parse_integer("0x-1"), None);
    }
}
