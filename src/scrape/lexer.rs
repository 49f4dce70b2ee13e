//! The syntax of one line in either exposition format: metadata, samples, label sets,
//! escapes, numbers and timestamps. Slices borrow the input; a label value or HELP text is
//! copied only when it holds an escape.
//!
//! OpenMetrics 1.0 follows its ABNF exactly: single spaces, no trailing comma, no comments.
//! Text 0.0.4 follows Prometheus's exposition-format document and `expfmt`: blanks and tabs
//! between tokens, an optional trailing comma, comments, and only `\\`, `\"`, `\n` escapes.

use std::borrow::Cow;

use super::error::{ErrorKind, Got};
use super::parse::{Exemplar, FamilyType, Format, Labels};

/// One line, classified.
#[derive(Debug)]
pub(crate) enum Line<'a> {
    /// Text 0.0.4: an empty line, a comment, or a `#` line that is not HELP or TYPE.
    Ignored,
    /// OpenMetrics `# EOF`.
    Eof,
    /// `# HELP name text`.
    Help(&'a str, Cow<'a, str>),
    /// `# TYPE name type`.
    Type(&'a str, FamilyType),
    /// `# UNIT name unit` (OpenMetrics).
    Unit(&'a str, &'a str),
    /// A sample.
    Sample(RawSample<'a>),
}

/// A sample line as written.
#[derive(Debug)]
pub(crate) struct RawSample<'a> {
    /// The sample's metric name.
    pub name: &'a str,
    /// The label pairs in written order, values unescaped.
    pub labels: Labels<'a>,
    /// The label block as written, braces included (empty when there is none).
    pub label_text: &'a str,
    /// The value.
    pub value: f64,
    /// The value as written.
    pub value_text: &'a str,
    /// The timestamp in milliseconds.
    pub timestamp: Option<i64>,
    /// The exemplar (OpenMetrics).
    pub exemplar: Option<Exemplar<'a>>,
}

type Result<T> = std::result::Result<T, ErrorKind>;

/// Classifies and parses one line (without its line feed).
pub(crate) fn line(line: &str, format: Format) -> Result<Line<'_>> {
    match format {
        Format::OpenMetrics => om_line(line),
        Format::Text => text_line(line),
    }
}

fn expected(expected: &'static str, rest: &str) -> ErrorKind {
    ErrorKind::Expected {
        expected,
        got: Got::at(rest),
    }
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// Character classes, one bit each, by byte.
const NAME_START: u8 = 1;
const NAME: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL: u8 = 8;
/// A byte that ends the plain part of a label value: a quote or a backslash.
const VALUE_STOP: u8 = 16;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b.is_ascii_alphabetic() || b == b'_' {
            NAME_START | NAME | LABEL_START | LABEL
        } else if b == b':' {
            NAME_START | NAME
        } else if b.is_ascii_digit() {
            NAME | LABEL
        } else if b == b'"' || b == b'\\' {
            VALUE_STOP
        } else {
            0
        };
        i += 1;
    }
    table
}

fn is(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// The end of the run of `class` bytes in `s` from `start`.
fn run(s: &[u8], start: usize, class: u8) -> usize {
    let mut i = start;
    while i < s.len() && is(s[i], class) {
        i += 1;
    }
    i
}

fn is_name_char(b: u8) -> bool {
    is(b, NAME)
}

/// The length of the metric name at the start of `s` (0 when `s` does not start with one).
fn metric_name_len(s: &[u8]) -> usize {
    match s.first() {
        Some(b) if is(*b, NAME_START) => run(s, 1, NAME),
        _ => 0,
    }
}

/// The length of the label name at the start of `s` (0 when `s` does not start with one).
fn label_name_len(s: &[u8]) -> usize {
    match s.first() {
        Some(b) if is(*b, LABEL_START) => run(s, 1, LABEL),
        _ => 0,
    }
}

/// The token starting at `s`, up to a blank, tab, brace, equals sign, comma or quote: what
/// an error about a bad name shows.
fn bad_token(s: &str) -> String {
    let end = s
        .find([' ', '\t', '{', '}', '=', ',', '"'])
        .unwrap_or(s.len());
    super::error::clip(&s[..end.max(1).min(s.len())], 40)
}

/// Reads the metric name at the start of `s`: the name and the rest.
fn metric_name<'a>(s: &'a str, what: &'static str) -> Result<(&'a str, &'a str)> {
    let n = metric_name_len(s.as_bytes());
    if n == 0 {
        return Err(if s.is_empty() || s.starts_with([' ', '\t', '{']) {
            expected(what, s)
        } else {
            ErrorKind::InvalidMetricName(bad_token(s))
        });
    }
    Ok(s.split_at(n))
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics
// ---------------------------------------------------------------------------------------------

fn om_line(line: &str) -> Result<Line<'_>> {
    if line.is_empty() {
        return Err(ErrorKind::EmptyLine);
    }
    if line.starts_with('#') {
        return om_metadata(line);
    }
    om_sample(line).map(Line::Sample)
}

fn om_metadata(line: &str) -> Result<Line<'_>> {
    if line == "# EOF" {
        return Ok(Line::Eof);
    }
    let invalid = || ErrorKind::InvalidComment(super::error::clip(line, 40));
    let rest = line.strip_prefix("# ").ok_or_else(invalid)?;
    let (keyword, rest) = ["HELP", "TYPE", "UNIT"]
        .into_iter()
        .find_map(|k| rest.strip_prefix(k).map(|r| (k, r)))
        .ok_or_else(invalid)?;
    let rest = match rest.strip_prefix(' ') {
        Some(r) => r,
        None if rest.is_empty() => return Err(expected(name_after(keyword), rest)),
        None => return Err(invalid()),
    };
    let (name, rest) = metric_name(rest, name_after(keyword))?;
    let value = match rest.strip_prefix(' ') {
        Some(v) => v,
        None if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_whitespace()) => {
            return Err(expected("a space after the metric name", rest));
        }
        None => {
            return Err(ErrorKind::InvalidMetricName(bad_token(line_from(
                line, name,
            ))));
        }
    };
    match keyword {
        "HELP" => Ok(Line::Help(
            name,
            unescape(value, Format::OpenMetrics, true)?,
        )),
        "TYPE" => FamilyType::from_om(value)
            .map(|t| Line::Type(name, t))
            .ok_or_else(|| ErrorKind::UnknownType(super::error::clip(value, 40))),
        _ => {
            if value.bytes().all(is_name_char) {
                Ok(Line::Unit(name, value))
            } else {
                Err(ErrorKind::InvalidUnit(super::error::clip(value, 40)))
            }
        }
    }
}

/// `line` from where `part` (a subslice of it) starts.
fn line_from<'a>(line: &'a str, part: &str) -> &'a str {
    let start = part.as_ptr() as usize - line.as_ptr() as usize;
    &line[start..]
}

fn name_after(keyword: &str) -> &'static str {
    match keyword {
        "HELP" => "metric name after HELP",
        "TYPE" => "metric name after TYPE",
        _ => "metric name after UNIT",
    }
}

fn om_sample(line: &str) -> Result<RawSample<'_>> {
    let (name, rest) = metric_name(line, "a metric name")?;
    let (labels, label_text, rest) = if rest.starts_with('{') {
        let (labels, rest) = label_set(rest, Format::OpenMetrics, name)?;
        (labels, &rest_before(rest, line)[name.len()..], rest)
    } else {
        (Labels::new(), "", rest)
    };
    let rest = match rest.strip_prefix(' ') {
        Some(r) => r,
        None if rest.is_empty() => return Err(expected("a space and a value", rest)),
        None if label_text.is_empty() && !rest.starts_with(|c: char| c.is_ascii_whitespace()) => {
            return Err(ErrorKind::InvalidMetricName(bad_token(line)));
        }
        None if label_text.is_empty() => return Err(expected("a space and a value", rest)),
        None => return Err(expected("a space after the label set", rest)),
    };
    let (value_text, rest) = split_at_space(rest);
    let value = number(value_text)?;
    let mut sample = RawSample {
        name,
        labels,
        label_text,
        value,
        value_text,
        timestamp: None,
        exemplar: None,
    };
    if rest.is_empty() {
        return Ok(sample);
    }
    let rest = &rest[1..];
    let rest = if rest.starts_with('#') {
        rest
    } else {
        let (ts, rest) = split_at_space(rest);
        sample.timestamp = Some(om_timestamp(ts)?);
        if rest.is_empty() {
            return Ok(sample);
        }
        &rest[1..]
    };
    sample.exemplar = Some(exemplar(rest)?);
    Ok(sample)
}

/// The part of `line` before `rest` (a suffix of it).
fn rest_before<'a>(rest: &str, line: &'a str) -> &'a str {
    &line[..line.len() - rest.len()]
}

/// Splits at the first space: the token and the rest (starting with the space, or empty).
fn split_at_space(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// `# {labels} value [timestamp]`, after the sample's timestamp.
fn exemplar(s: &str) -> Result<Exemplar<'_>> {
    let rest = s
        .strip_prefix("# ")
        .ok_or_else(|| expected("\"# \" and an exemplar", s))?;
    if !rest.starts_with('{') {
        return Err(expected("the exemplar's label set", rest));
    }
    let (labels, rest) = label_set(rest, Format::OpenMetrics, "exemplar")?;
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| expected("a space and the exemplar's value", rest))?;
    let (value_text, rest) = split_at_space(rest);
    let value = number(value_text)?;
    let timestamp = if rest.is_empty() {
        None
    } else {
        let ts = &rest[1..];
        if ts.contains(' ') || ts.is_empty() {
            return Err(expected(
                "the exemplar's timestamp and the end of the line",
                ts,
            ));
        }
        Some(om_timestamp(ts)?)
    };
    Ok(Exemplar {
        labels,
        value,
        timestamp,
    })
}

// ---------------------------------------------------------------------------------------------
// Text 0.0.4
// ---------------------------------------------------------------------------------------------

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn text_line(line: &str) -> Result<Line<'_>> {
    let s = skip_blanks(line);
    if s.is_empty() {
        return Ok(Line::Ignored);
    }
    if let Some(comment) = s.strip_prefix('#') {
        return text_comment(comment);
    }
    text_sample(s).map(Line::Sample)
}

fn text_comment(s: &str) -> Result<Line<'_>> {
    let s = skip_blanks(s);
    let end = s.bytes().position(is_blank).unwrap_or(s.len());
    let keyword = &s[..end];
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(Line::Ignored);
    }
    let what = name_after(keyword);
    let rest = skip_blanks(&s[end..]);
    let (name, rest) = metric_name(rest, what)?;
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(ErrorKind::InvalidMetricName(bad_token(line_from(s, name))));
    }
    let value = skip_blanks(rest);
    if keyword == "HELP" {
        return Ok(Line::Help(name, unescape(value, Format::Text, true)?));
    }
    let value = value.trim_end_matches([' ', '\t']);
    if value.is_empty() {
        return Err(expected("a type after the metric name", value));
    }
    FamilyType::from_text(value)
        .map(|t| Line::Type(name, t))
        .ok_or_else(|| ErrorKind::UnknownType(super::error::clip(value, 40)))
}

fn text_sample(line: &str) -> Result<RawSample<'_>> {
    let (name, rest) = metric_name(line, "a metric name")?;
    let after_name = skip_blanks(rest);
    let (labels, label_text, rest) = if after_name.starts_with('{') {
        let (labels, rest) = label_set(after_name, Format::Text, name)?;
        let text = &after_name[..after_name.len() - rest.len()];
        (labels, text, skip_blanks(rest))
    } else if !rest.is_empty() && rest.len() == after_name.len() {
        // Neither a blank nor a brace after the name: the name goes on with a bad character.
        return Err(if rest.starts_with(|c: char| c.is_ascii_whitespace()) {
            expected("a blank and a value", rest)
        } else {
            ErrorKind::InvalidMetricName(bad_token(line))
        });
    } else {
        (Labels::new(), "", after_name)
    };
    if rest.is_empty() {
        return Err(expected("a value", rest));
    }
    let end = rest.bytes().position(is_blank).unwrap_or(rest.len());
    let value_text = &rest[..end];
    let value = number(value_text)?;
    let rest = skip_blanks(&rest[end..]);
    let mut sample = RawSample {
        name,
        labels,
        label_text,
        value,
        value_text,
        timestamp: None,
        exemplar: None,
    };
    if rest.is_empty() {
        return Ok(sample);
    }
    if rest.starts_with('#') {
        return Err(ErrorKind::ExemplarInText);
    }
    let end = rest.bytes().position(is_blank).unwrap_or(rest.len());
    sample.timestamp = Some(text_timestamp(&rest[..end])?);
    let spurious = skip_blanks(&rest[end..]);
    if !spurious.is_empty() {
        return Err(ErrorKind::SpuriousText(super::error::clip(spurious, 40)));
    }
    Ok(sample)
}

// ---------------------------------------------------------------------------------------------
// Label sets and escapes
// ---------------------------------------------------------------------------------------------

/// Parses `{…}` at the start of `s`: the pairs and what follows the closing brace. `metric` is
/// named in a duplicate-label error.
fn label_set<'a>(s: &'a str, format: Format, metric: &str) -> Result<(Labels<'a>, &'a str)> {
    let text = format == Format::Text;
    let mut labels = Labels::new();
    let mut rest = &s[1..];
    if text {
        rest = skip_blanks(rest);
    }
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((labels, r));
    }
    loop {
        let n = label_name_len(rest.as_bytes());
        if n == 0 {
            return Err(if rest.is_empty() || !rest.as_bytes()[0].is_ascii_digit() {
                expected("label name", rest)
            } else {
                ErrorKind::InvalidLabelName(bad_token(rest))
            });
        }
        let (name, r) = rest.split_at(n);
        rest = r;
        if text {
            rest = skip_blanks(rest);
        }
        rest = match rest.strip_prefix('=') {
            Some(r) => r,
            None if rest
                .starts_with(|c: char| c == ':' || c == '-' || c == '.' || c.is_alphanumeric()) =>
            {
                return Err(ErrorKind::InvalidLabelName(bad_token(line_from(s, name))));
            }
            None => return Err(expected("'=' after label name", rest)),
        };
        if text {
            rest = skip_blanks(rest);
        }
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| expected("'\"' at start of label value", rest))?;
        let (value, r) = quoted(rest, format)?;
        rest = r;
        if name.starts_with("__") {
            return Err(ErrorKind::ReservedLabelName(name.to_owned()));
        }
        labels.push((name, value));
        if text {
            rest = skip_blanks(rest);
        }
        match rest.as_bytes().first() {
            Some(b',') => {
                rest = &rest[1..];
                if text {
                    rest = skip_blanks(rest);
                    if let Some(r) = rest.strip_prefix('}') {
                        rest = r;
                        break;
                    }
                }
            }
            Some(b'}') => {
                rest = &rest[1..];
                break;
            }
            _ => return Err(expected("',' or '}' after label value", rest)),
        }
    }
    if let Some(label) = duplicate_name(&labels) {
        return Err(ErrorKind::DuplicateLabelName {
            metric: metric.to_owned(),
            label: label.to_owned(),
        });
    }
    Ok((labels, rest))
}

/// Parses a label block (`{…}`) that [`line`] accepted before.
pub(crate) fn labels(text: &str, format: Format) -> Option<Labels<'_>> {
    label_set(text, format, "").ok().map(|(labels, _)| labels)
}

/// A label name that occurs twice, if any (linear for the usual handful of labels).
fn duplicate_name<'a>(labels: &Labels<'a>) -> Option<&'a str> {
    if labels.len() <= 16 {
        for (i, (a, _)) in labels.iter().enumerate() {
            if labels[..i].iter().any(|(b, _)| a == b) {
                return Some(a);
            }
        }
        return None;
    }
    let mut names: Vec<&str> = labels.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// Reads a label value after its opening quote: the value and what follows the closing quote.
fn quoted(s: &str, format: Format) -> Result<(Cow<'_, str>, &str)> {
    let bytes = s.as_bytes();
    let mut end = 0;
    while end < bytes.len() && !is(bytes[end], VALUE_STOP) {
        end += 1;
    }
    if end == bytes.len() {
        return Err(ErrorKind::UnterminatedLabelValue(super::error::clip(s, 40)));
    }
    if bytes[end] == b'"' {
        return Ok((Cow::Borrowed(&s[..end]), &s[end + 1..]));
    }
    // An escape: find the closing quote, skipping escaped characters.
    let mut i = end;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let value = unescape(&s[..i], format, false)?;
                return Ok((value, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    Err(ErrorKind::UnterminatedLabelValue(super::error::clip(s, 40)))
}

/// Unescapes a label value (`help == false`, quotes already removed) or HELP text.
///
/// OpenMetrics: `\\`, `\"`, `\n`; a backslash before any other character stands for itself
/// (the ABNF allows it); a bare double quote is not allowed in HELP text. Text 0.0.4: `\\`,
/// `\"` and `\n` in label values, `\\` and `\n` in HELP; any other escape is an error.
pub(crate) fn unescape(s: &str, format: Format, help: bool) -> Result<Cow<'_, str>> {
    let om = format == Format::OpenMetrics;
    if om && help && s.contains('"') {
        // A quote is fine only right after an odd run of backslashes.
        let b = s.as_bytes();
        for (i, _) in s.match_indices('"') {
            let backslashes = b[..i].iter().rev().take_while(|c| **c == b'\\').count();
            if backslashes % 2 == 0 {
                return Err(ErrorKind::UnescapedQuote);
            }
        }
    }
    if !s.contains('\\') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if om || !help => out.push('"'),
            Some(other) if om => {
                out.push('\\');
                out.push(other);
            }
            Some(other) => return Err(ErrorKind::InvalidEscape(other)),
            None => return Err(ErrorKind::InvalidEscape('\n')),
        }
    }
    Ok(Cow::Owned(out))
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// Parses a sample value: Go's `strconv.ParseFloat` syntax as Prometheus accepts it (decimal,
/// `Inf`/`Infinity` with an optional sign and `NaN`, in any case; no hexadecimal, no
/// underscores), which is also OpenMetrics's `number`. A finite number that overflows is an
/// error, as in Go.
pub(crate) fn number(s: &str) -> Result<f64> {
    parse_float(s).map_err(|e| match e {
        FloatError::Syntax => ErrorKind::InvalidValue(super::error::clip(s, 40)),
        FloatError::Range => ErrorKind::ValueOutOfRange(super::error::clip(s, 40)),
    })
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FloatError {
    Syntax,
    Range,
}

/// See [`number`].
pub(crate) fn parse_float(s: &str) -> std::result::Result<f64, FloatError> {
    let b = s.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    match digits.first() {
        None => return Err(FloatError::Syntax),
        Some(b'i' | b'I') => {
            return if digits.eq_ignore_ascii_case(b"inf")
                || digits.eq_ignore_ascii_case(b"infinity")
            {
                Ok(if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            } else {
                Err(FloatError::Syntax)
            };
        }
        Some(b'n' | b'N') => {
            return if digits.len() == b.len() && digits.eq_ignore_ascii_case(b"nan") {
                Ok(f64::NAN)
            } else {
                Err(FloatError::Syntax)
            };
        }
        _ => {}
    }
    if digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let v = digits
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0')) as f64;
        return Ok(if negative { -v } else { v });
    }
    if !is_decimal(digits) {
        return Err(FloatError::Syntax);
    }
    let v: f64 = s.parse().map_err(|_| FloatError::Syntax)?;
    if v.is_infinite() {
        return Err(FloatError::Range);
    }
    Ok(v)
}

/// Whether `b` (without a sign) is `digits [. digits] [e [sign] digits]` with at least one
/// mantissa digit.
fn is_decimal(b: &[u8]) -> bool {
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// A text 0.0.4 timestamp: Go's `strconv.ParseInt` in base 10, milliseconds.
fn text_timestamp(s: &str) -> Result<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorKind::InvalidIntegerTimestamp(super::error::clip(
            s, 40,
        )));
    }
    s.parse()
        .map_err(|_| ErrorKind::TimestampOutOfRange(super::error::clip(s, 40)))
}

/// An OpenMetrics timestamp: a real number of seconds (no NaN or infinity), as milliseconds.
/// Decimal notation converts exactly (truncating below a millisecond, toward zero, as
/// Prometheus's `int64(ts * 1000)` does); exponent notation goes through a float.
pub(crate) fn om_timestamp(s: &str) -> Result<i64> {
    let invalid = || ErrorKind::InvalidTimestamp(super::error::clip(s, 40));
    let range = || ErrorKind::TimestampOutOfRange(super::error::clip(s, 40));
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if !is_decimal(body.as_bytes()) {
        return Err(invalid());
    }
    if body.contains(['e', 'E']) {
        let seconds: f64 = s.parse().map_err(|_| invalid())?;
        let ms = (seconds * 1000.0).trunc();
        // i64::MAX as f64 rounds up to 2^63, so the bound is exclusive.
        if !ms.is_finite() || ms.abs() >= 2f64.powi(63) {
            return Err(range());
        }
        return Ok(ms as i64);
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut ms: i64 = 0;
    for d in int.bytes() {
        ms = ms
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(d - b'0')))
            .ok_or_else(range)?;
    }
    ms = ms.checked_mul(1000).ok_or_else(range)?;
    let mut scale = 100;
    for d in frac.bytes().take(3) {
        ms += i64::from(d - b'0') * scale;
        scale /= 10;
    }
    Ok(if negative { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_go() {
        for (s, v) in [
            ("1", 1.0),
            ("-0", -0.0),
            ("0042", 42.0),
            ("1.5", 1.5),
            ("5.", 5.0),
            (".5", 0.5),
            ("+1.5e3", 1500.0),
            ("1E-2", 0.01),
            ("Inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("123456789012345678", 123456789012345678.0),
        ] {
            assert_eq!(parse_float(s), Ok(v), "{s}");
        }
        assert!(parse_float("nan").unwrap().is_nan());
        assert!(parse_float("NaN").unwrap().is_nan());
        for bad in [
            "",
            "+",
            ".",
            "e5",
            "1e",
            "1e+",
            "+nan",
            "-NaN",
            "0x10",
            "0x1p3",
            "1_000",
            " 1",
            "1 ",
            "infin",
            "Infinityy",
            "١",
        ] {
            assert_eq!(parse_float(bad), Err(FloatError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_float("1e400"), Err(FloatError::Range));
        assert_eq!(parse_float("1e-400"), Ok(0.0));
    }

    #[test]
    fn om_timestamps_are_exact() {
        for (s, ms) in [
            ("1520879607.789", 1_520_879_607_789),
            ("1.001", 1001),
            ("1.0019", 1001),
            ("-1.5", -1500),
            ("17", 17_000),
            ("1e3", 1_000_000),
            ("1.5e-3", 1),
        ] {
            assert_eq!(om_timestamp(s), Ok(ms), "{s}");
        }
        assert!(om_timestamp("NaN").is_err());
        assert!(om_timestamp("+Inf").is_err());
        assert!(matches!(
            om_timestamp("99999999999999999999"),
            Err(ErrorKind::TimestampOutOfRange(_))
        ));
    }

    #[test]
    fn unescaping() {
        let om = Format::OpenMetrics;
        assert_eq!(unescape(r#"a\\b\nc\"d"#, om, false).unwrap(), "a\\b\nc\"d");
        assert_eq!(unescape(r"a\qb", om, false).unwrap(), "a\\qb");
        assert!(matches!(
            unescape("plain", om, false).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            unescape(r"a\qb", Format::Text, false),
            Err(ErrorKind::InvalidEscape('q'))
        );
        assert_eq!(
            unescape(r#"say \"hi\""#, Format::Text, true),
            Err(ErrorKind::InvalidEscape('"'))
        );
        assert_eq!(
            unescape(r#"say "hi""#, om, true),
            Err(ErrorKind::UnescapedQuote)
        );
        assert_eq!(unescape(r#"say \"hi\""#, om, true).unwrap(), "say \"hi\"");
    }

    #[test]
    fn text_samples_allow_blanks() {
        let Line::Sample(s) = line(" a { b = \"1\" , } 2 \t 3 ", Format::Text).unwrap() else {
            panic!()
        };
        assert_eq!((s.name, s.value, s.timestamp), ("a", 2.0, Some(3)));
        assert_eq!(s.labels, vec![("b", Cow::Borrowed("1"))]);
        assert_eq!(s.label_text, "{ b = \"1\" , }");
    }
}
