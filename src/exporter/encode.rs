//! Encoding registries as OpenMetrics 1.0 text and Prometheus text 0.0.4.

use super::registry::{Family, MetricType, Registry};
use crate::model::value::write_float;

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format a scraper asks for with its `Accept` header: OpenMetrics when it lists
    /// `application/openmetrics-text` with a non-zero quality, text 0.0.4 otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            if params.next() != Some("application/openmetrics-text") {
                continue;
            }
            let zero = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if !zero {
                return Format::OpenMetrics;
            }
        }
        Format::Text
    }
}

impl Registry {
    /// The whole registry in `format`, terminated (`# EOF` for OpenMetrics).
    pub fn encode(&self, format: Format) -> String {
        let mut out = Vec::new();
        self.encode_into(format, &mut out);
        finish(format, &mut out);
        String::from_utf8(out).expect("exposition is UTF-8")
    }

    /// Appends every non-empty family to `out`, without the terminating `# EOF`.
    pub fn encode_into(&self, format: Format, out: &mut Vec<u8>) {
        for family in self.families() {
            encode_family(&family, format, out);
        }
    }
}

/// Terminates an exposition: `# EOF` for OpenMetrics, nothing for text 0.0.4.
pub fn finish(format: Format, out: &mut Vec<u8>) {
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

fn encode_family(family: &Family, format: Format, out: &mut Vec<u8>) {
    if family.is_empty() {
        return;
    }
    let name = family.name();
    let kind = family.kind();
    let meta_name = match (format, kind) {
        (Format::Text, MetricType::Counter) => format!("{name}_total"),
        _ => name.to_owned(),
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(meta_name.as_bytes());
    out.push(b' ');
    escape_help(family.help(), format, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(meta_name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'\n');
    if let (Format::OpenMetrics, Some(unit)) = (format, family.unit()) {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
    match kind {
        MetricType::Counter | MetricType::Gauge => {
            let suffix: &[u8] = if kind == MetricType::Counter {
                b"_total"
            } else {
                b""
            };
            family.for_each(|s| {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(suffix);
                write_labels(s.labels(), None, out);
                out.push(b' ');
                write_float(s.value(), out);
                out.push(b'\n');
            });
        }
        MetricType::Histogram => {
            let mut les: Vec<Vec<u8>> = family
                .buckets()
                .iter()
                .map(|b| {
                    let mut v = Vec::new();
                    write_float(*b, &mut v);
                    v
                })
                .collect();
            les.push(b"+Inf".to_vec());
            let mut counts = Vec::with_capacity(les.len());
            family.for_each(|s| {
                let sum = s.histogram_into(&mut counts);
                for (le, count) in les.iter().zip(&counts) {
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"_bucket");
                    write_labels(s.labels(), Some(le), out);
                    out.push(b' ');
                    out.extend_from_slice(itoa::Buffer::new().format(*count).as_bytes());
                    out.push(b'\n');
                }
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"_sum");
                write_labels(s.labels(), None, out);
                out.push(b' ');
                write_float(sum, out);
                out.push(b'\n');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"_count");
                write_labels(s.labels(), None, out);
                out.push(b' ');
                let count = counts.last().copied().unwrap_or(0);
                out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
                out.push(b'\n');
            });
        }
    }
}

fn write_labels(labels: &str, le: Option<&[u8]>, out: &mut Vec<u8>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push(b'{');
    out.extend_from_slice(labels.as_bytes());
    if let Some(le) = le {
        if !labels.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"");
        out.extend_from_slice(le);
        out.push(b'"');
    }
    out.push(b'}');
}

fn escape_help(help: &str, format: Format, out: &mut Vec<u8>) {
    for b in help.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if format == Format::OpenMetrics => out.extend_from_slice(b"\\\""),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registry {
        let r = Registry::default();
        let c = r
            .register("orders", MetricType::Counter, "Orders \"sent\".", None, &[])
            .unwrap();
        c.counter("engine=\"a\"").unwrap().inc_by(2.0);
        let h = r
            .register(
                "lat_seconds",
                MetricType::Histogram,
                "Latency.",
                Some("seconds"),
                &[0.1, 1.0],
            )
            .unwrap();
        h.histogram("").unwrap().observe(0.5);
        r.register("empty", MetricType::Gauge, "Nothing.", None, &[])
            .unwrap();
        r
    }

    #[test]
    fn openmetrics() {
        assert_eq!(
            sample().encode(Format::OpenMetrics),
            "# HELP orders Orders \\\"sent\\\".\n# TYPE orders counter\norders_total{engine=\"a\"} 2.0\n\
             # HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n# UNIT lat_seconds seconds\n\
             lat_seconds_bucket{le=\"0.1\"} 0\nlat_seconds_bucket{le=\"1.0\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 1\n\
             lat_seconds_sum 0.5\nlat_seconds_count 1\n# EOF\n"
        );
    }

    #[test]
    fn text() {
        let text = sample().encode(Format::Text);
        assert!(text.starts_with("# HELP orders_total Orders \"sent\".\n# TYPE orders_total counter\norders_total{engine=\"a\"} 2.0\n"));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("UNIT"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        let prom = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Text
        );
    }
}
