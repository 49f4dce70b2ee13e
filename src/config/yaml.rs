//! YAML → typed values with positions: the one place that names a YAML crate. `yaml_serde`
//! deserializes; `saphyr-parser`'s marked events give the line and column of every key and value,
//! so later checks can report `file:line:col: message`.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};
use serde::de::DeserializeOwned;

/// A 1-based position in a YAML text; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem in a file, printed `origin:line:col: message` (or `origin: message` when the
/// position is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name (or other origin) the text came from.
    pub origin: String,
    /// Where in the text, when known.
    pub location: Option<Location>,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(location) => write!(f, "{}:{}: {}", self.origin, location, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// A syntax or type error: the text is not YAML, or not of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub Diagnostic);

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A mapping key (non-scalar keys appear as the empty string).
    Key(String),
    /// A position in a sequence, from 0.
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(key: &str) -> PathSeg {
        PathSeg::Key(key.to_owned())
    }
}

impl From<&String> for PathSeg {
    fn from(key: &String) -> PathSeg {
        PathSeg::Key(key.clone())
    }
}

impl From<String> for PathSeg {
    fn from(key: String) -> PathSeg {
        PathSeg::Key(key)
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> PathSeg {
        PathSeg::Index(index)
    }
}

/// Where one node of a document is: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// The position of the key, for a mapping entry.
    pub key: Option<Location>,
    /// The position of the value (of `*alias` for an alias).
    pub value: Location,
}

/// The positions of every key and value in a document, by path.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    nodes: HashMap<Vec<PathSeg>, NodeSpan>,
    /// Scalar values by position: their text and character range, for [`parse_recovering`].
    scalars: HashMap<Location, Scalar>,
    /// Mapping keys written twice in one mapping, in the order found.
    duplicates: Vec<DuplicateKey>,
}

/// A mapping key written a second time in the same mapping.
#[derive(Debug, Clone)]
struct DuplicateKey {
    key: String,
    /// Where the second one is.
    at: Location,
    /// The line of the first one.
    first_line: usize,
}

/// A scalar value as written: its text after unquoting and its range in characters.
#[derive(Debug, Clone)]
struct Scalar {
    text: String,
    start: usize,
    end: usize,
}

impl Spans {
    /// Builds the table for the first document of `text`. A text the position parser cannot read
    /// gives the positions found before the problem (lookups then fall back to ancestors).
    pub fn build(text: &str) -> Spans {
        let mut builder = SpanBuilder::default();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            if !builder.event(&event, span) {
                break;
            }
        }
        Spans {
            nodes: builder.nodes,
            scalars: builder.scalars,
            duplicates: builder.duplicates,
        }
    }

    /// The first mapping key written twice in one mapping, as go-yaml's strict decoding (which
    /// Prometheus and Alertmanager use) reports it.
    fn duplicate_key_error(&self, origin: &str) -> Option<YamlError> {
        self.duplicates.first().map(|d| {
            YamlError(Diagnostic {
                origin: origin.to_owned(),
                location: Some(d.at),
                message: format!(
                    "mapping key {:?} already defined at line {}",
                    d.key, d.first_line
                ),
            })
        })
    }

    /// The spans of the node at exactly `path`.
    pub fn get(&self, path: &[PathSeg]) -> Option<&NodeSpan> {
        self.nodes.get(path)
    }

    /// The position of the value at `path`, or of the nearest ancestor that exists.
    pub fn locate(&self, path: &[PathSeg]) -> Option<Location> {
        (0..=path.len())
            .rev()
            .find_map(|len| self.nodes.get(&path[..len]))
            .map(|node| node.value)
    }

    /// The position of the key at `path` (its value for a sequence item), or of the nearest
    /// ancestor that exists.
    pub fn locate_key(&self, path: &[PathSeg]) -> Option<Location> {
        (0..=path.len())
            .rev()
            .find_map(|len| self.nodes.get(&path[..len]))
            .map(|node| node.key.unwrap_or(node.value))
    }
}

/// A parsed document: the typed value and where each of its parts was written.
#[derive(Debug, Clone)]
pub struct Document<T> {
    /// The typed value.
    pub value: T,
    /// Positions of keys and values, for reporting later problems.
    pub spans: Spans,
}

/// Parses `text` (from `origin`, a file name for messages) into `T`, keeping positions.
///
/// A syntax or type error comes back as one `origin:line:col: message`.
pub fn parse<T: DeserializeOwned>(text: &str, origin: &str) -> Result<Document<T>, YamlError> {
    let value = yaml_serde::from_str(text).map_err(|error| convert_error(&error, origin))?;
    let spans = Spans::build(text);
    if let Some(error) = spans.duplicate_key_error(origin) {
        return Err(error);
    }
    Ok(Document { value, spans })
}

/// Most scalar errors [`parse_recovering`] reports before it gives up on the file.
const MAX_RECOVERED: usize = 100;

/// Like [`parse`], but an error in a single scalar value that `recover` accepts does not stop
/// the parse: it is recorded, the scalar is replaced by the placeholder `recover` returns, and
/// the parse goes on, so that several bad values (durations, say) are all reported.
///
/// `recover` gets the scalar's text and the error message; it returns the placeholder text,
/// which must not be longer than the shortest scalar (one character), to keep later positions.
/// The recorded diagnostics come back beside the document, in the order found.
pub fn parse_recovering<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    recover: impl Fn(&str, &str) -> Option<&'static str>,
) -> Result<(Document<T>, Vec<Diagnostic>), YamlError> {
    let mut text = text.to_owned();
    let mut recovered: Vec<Diagnostic> = Vec::new();
    let mut spans: Option<Spans> = None;
    loop {
        let error = match yaml_serde::from_str::<T>(&text) {
            Ok(value) => {
                let spans = spans.unwrap_or_else(|| Spans::build(&text));
                if let Some(error) = spans.duplicate_key_error(origin) {
                    return Err(error);
                }
                return Ok((Document { value, spans }, recovered));
            }
            Err(error) => convert_error(&error, origin),
        };
        let table = spans.get_or_insert_with(|| Spans::build(&text));
        let replacement = error
            .0
            .location
            .and_then(|at| table.scalars.get(&at))
            .filter(|_| recovered.len() < MAX_RECOVERED)
            .and_then(|scalar| Some((scalar, recover(&scalar.text, &error.0.message)?)));
        let Some((scalar, placeholder)) = replacement else {
            return Err(error);
        };
        let (start, end) = (
            char_to_byte(&text, scalar.start),
            char_to_byte(&text, scalar.end),
        );
        let blanked: String = text[start..end]
            .chars()
            .enumerate()
            .map(|(i, c)| match c {
                '\n' | '\r' => c,
                _ => placeholder.chars().nth(i).unwrap_or(' '),
            })
            .collect();
        text.replace_range(start..end, &blanked);
        recovered.push(error.0);
        // Positions are unchanged: the placeholder and its padding take the scalar's characters.
        let table = spans.as_mut().expect("built above");
        table.scalars.remove(
            &recovered[recovered.len() - 1]
                .location
                .expect("located above"),
        );
    }
}

/// The byte offset of the character at `index` (the end of the text past the last one).
fn char_to_byte(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(at, _)| at)
}

/// `yaml_serde`'s message without its trailing ` at line L column C`, with the position apart.
fn convert_error(error: &yaml_serde::Error, origin: &str) -> YamlError {
    let mut message = error.to_string();
    let location = error.location().map(|l| Location {
        line: l.line(),
        col: l.column(),
    });
    if let Some(l) = location {
        let suffix = format!(" at line {} column {}", l.line, l.col);
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
    }
    YamlError(Diagnostic {
        origin: origin.to_owned(),
        location,
        message,
    })
}

/// A container being walked.
#[derive(Debug)]
enum Frame {
    /// A mapping; `pending` holds the key (and its position) whose value comes next.
    Map {
        pending: Option<(PathSeg, Location)>,
        has_seg: bool,
    },
    /// A sequence; `next` is the index of the next item.
    Seq { next: usize, has_seg: bool },
}

#[derive(Debug, Default)]
struct SpanBuilder {
    nodes: HashMap<Vec<PathSeg>, NodeSpan>,
    scalars: HashMap<Location, Scalar>,
    duplicates: Vec<DuplicateKey>,
    /// Path of the innermost open container.
    path: Vec<PathSeg>,
    frames: Vec<Frame>,
    /// Depth inside a non-scalar mapping key, which is skipped.
    skip: usize,
    /// Whether the first document's root node has been seen.
    started: bool,
}

fn location(span: Span) -> Location {
    Location {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

impl SpanBuilder {
    /// Takes one event; false once the first document is complete.
    fn event(&mut self, event: &Event<'_>, span: Span) -> bool {
        let opens = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        let closes = matches!(event, Event::SequenceEnd | Event::MappingEnd);
        if self.skip > 0 {
            if opens {
                self.skip += 1;
            } else if closes {
                self.skip -= 1;
                if self.skip == 0 {
                    self.set_pending(PathSeg::Key(String::new()), location(span));
                }
            }
            return true;
        }
        match event {
            Event::DocumentEnd => return !self.started,
            Event::Scalar(..)
            | Event::Alias(..)
            | Event::SequenceStart(..)
            | Event::MappingStart(..) => {
                if self.started && self.frames.is_empty() {
                    return false;
                }
                self.started = true;
                self.node(event, span, opens);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let has_seg = match self.frames.pop() {
                    Some(Frame::Map { has_seg, .. } | Frame::Seq { has_seg, .. }) => has_seg,
                    None => false,
                };
                if has_seg {
                    self.path.pop();
                }
                self.advance();
                if self.frames.is_empty() {
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    fn set_pending(&mut self, key: PathSeg, at: Location) {
        if let Some(Frame::Map { pending, .. }) = self.frames.last_mut() {
            *pending = Some((key, at));
        }
    }

    fn node(&mut self, event: &Event<'_>, span: Span, opens: bool) {
        let at = location(span);
        let (seg, key) = match self.frames.last_mut() {
            None => (None, None),
            Some(Frame::Map { pending: None, .. }) => {
                match event {
                    Event::Scalar(text, ..) => self.set_pending(PathSeg::Key(text.to_string()), at),
                    Event::Alias(..) => self.set_pending(PathSeg::Key(String::new()), at),
                    _ => self.skip = 1,
                }
                return;
            }
            Some(Frame::Map { pending, .. }) => {
                let (seg, key_at) = pending.take().expect("pending key checked above");
                (Some(seg), Some(key_at))
            }
            Some(Frame::Seq { next, .. }) => (Some(PathSeg::Index(*next)), None),
        };
        let has_seg = seg.is_some();
        if let Some(seg) = seg {
            self.path.push(seg);
        }
        match self.nodes.entry(self.path.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(NodeSpan { key, value: at });
            }
            std::collections::hash_map::Entry::Occupied(first) => {
                // The same key again in one mapping (`<<` merges may repeat; keys that are not
                // scalars all share the empty name and are not compared).
                if let (Some(PathSeg::Key(name)), Some(key_at), Some(first_at)) =
                    (self.path.last(), key, first.get().key)
                    && !name.is_empty()
                    && name != "<<"
                {
                    self.duplicates.push(DuplicateKey {
                        key: name.clone(),
                        at: key_at,
                        first_line: first_at.line,
                    });
                }
            }
        }
        if let Event::Scalar(text, ..) = event {
            self.scalars.insert(
                at,
                Scalar {
                    text: text.to_string(),
                    start: span.start.index(),
                    end: span.end.index(),
                },
            );
        }
        if opens {
            self.frames.push(match event {
                Event::SequenceStart(..) => Frame::Seq { next: 0, has_seg },
                _ => Frame::Map {
                    pending: None,
                    has_seg,
                },
            });
        } else {
            if has_seg {
                self.path.pop();
            }
            self.advance();
        }
    }

    /// Moves the innermost container past the value just completed.
    fn advance(&mut self) {
        if let Some(Frame::Seq { next, .. }) = self.frames.last_mut() {
            *next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, col: usize) -> Option<Location> {
        Some(Location { line, col })
    }

    fn path(segs: &[&dyn Fn() -> PathSeg]) -> Vec<PathSeg> {
        segs.iter().map(|f| f()).collect()
    }

    #[test]
    fn a_key_written_twice_in_one_mapping_is_refused_as_go_yaml_refuses_it() {
        let text = "a:\n  x: 1\n  y: 2\n  x: 3\nb: [{x: 1}, {x: 2}]\n";
        let err = parse::<serde_json::Value>(text, "f.yml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yml:4:3: mapping key \"x\" already defined at line 2"
        );
        // The same key in different mappings, or in items of a sequence, is no duplicate.
        let ok = "a: {x: 1}\nb: {x: 1}\nc: [{x: 1}, {x: 2}]\n";
        assert!(parse::<serde_json::Value>(ok, "f.yml").is_ok());
    }

    #[test]
    fn spans_cover_keys_values_and_items() {
        let text =
            "a:\n  b: 1\n  list:\n    - x\n    - {k: v, m: [1, 2]}\n    - - nested\nc: \"q\"\n";
        let spans = Spans::build(text);
        let key = |k: &'static str| move || PathSeg::from(k);
        let idx = |i: usize| move || PathSeg::Index(i);
        assert_eq!(spans.locate(&[]), at(1, 1));
        assert_eq!(spans.locate_key(&path(&[&key("a")])), at(1, 1));
        assert_eq!(spans.locate(&path(&[&key("a"), &key("b")])), at(2, 6));
        assert_eq!(spans.locate_key(&path(&[&key("a"), &key("b")])), at(2, 3));
        assert_eq!(
            spans.locate(&path(&[&key("a"), &key("list"), &idx(0)])),
            at(4, 7)
        );
        assert_eq!(
            spans.locate(&path(&[&key("a"), &key("list"), &idx(1), &key("k")])),
            at(5, 11)
        );
        assert_eq!(
            spans.locate_key(&path(&[&key("a"), &key("list"), &idx(1), &key("m")])),
            at(5, 14)
        );
        assert_eq!(
            spans.locate(&path(&[
                &key("a"),
                &key("list"),
                &idx(1),
                &key("m"),
                &idx(1)
            ])),
            at(5, 21)
        );
        assert_eq!(
            spans.locate(&path(&[&key("a"), &key("list"), &idx(2), &idx(0)])),
            at(6, 9)
        );
        assert_eq!(spans.locate(&path(&[&key("c")])), at(7, 4));
        // A missing path falls back to its nearest ancestor.
        assert_eq!(
            spans.locate(&path(&[&key("a"), &key("missing"), &idx(3)])),
            at(2, 3)
        );
        assert_eq!(
            spans.locate_key(&path(&[&key("a"), &key("list"), &idx(9)])),
            at(3, 3)
        );
    }

    #[test]
    fn complex_keys_and_aliases_do_not_derail_the_walk() {
        let text = "? [x, y]\n: 1\nanchor: &a {p: 1}\nalias: *a\nafter: 2\n";
        let spans = Spans::build(text);
        assert_eq!(spans.locate(&[PathSeg::from("after")]), at(5, 8));
        assert_eq!(spans.locate(&[PathSeg::from("alias")]), at(4, 8));
        assert_eq!(
            spans.locate(&[PathSeg::from("anchor"), PathSeg::from("p")]),
            at(3, 16)
        );
    }

    #[test]
    fn only_the_first_document_counts() {
        let spans = Spans::build("a: 1\n---\nb: 2\n");
        assert_eq!(spans.get(&[PathSeg::from("b")]), None);
        assert!(spans.get(&[PathSeg::from("a")]).is_some());
    }

    #[test]
    fn errors_carry_origin_line_and_column() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Shape {
            n: u32,
        }
        let err = parse::<Shape>("n: 1\nx: 2\n", "f.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:2:1: unknown field `x`, expected `n`"
        );
        let err = parse::<Shape>("n: [\n", "f.yaml").unwrap_err();
        assert_eq!(err.0.location.map(|l| l.line), Some(1));
        let err = parse::<Shape>("n: abc\n", "f.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:1:4: n: invalid type: string \"abc\", expected u32"
        );
    }
}
