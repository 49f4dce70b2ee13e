//! `tradewatch silence add|list|expire`: silences of a running notifier through its
//! Alertmanager API (`/api/v2/silences`, `/api/v2/silence/{id}`), with amtool's matcher syntax;
//! changes need the admin token.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{ClientError, Connection};
use crate::notify::matcher::{MatchOp, Matcher, parse_matchers};

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence {
    /// Matchers as amtool takes them (`desk=fx`, `alertname=~"Slow.*"`, `{a="b",c!="d"}`); a
    /// first argument that is not a matcher is the alert name.
    pub matchers: Vec<String>,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// Who makes it.
    pub author: String,
    /// Why.
    pub comment: String,
}

fn refused(message: String) -> ClientError {
    ClientError::Refused { message }
}

/// Parses matcher arguments as amtool's `silence add` does.
pub fn matchers(args: &[String]) -> Result<Vec<Matcher>, ClientError> {
    let mut out = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        match parse_matchers(arg) {
            Ok(m) => out.extend(m),
            Err(_) if i == 0 => {
                let m = Matcher::new(MatchOp::Equal, "alertname", arg)
                    .map_err(|e| refused(format!("bad matcher {arg:?}: {e}")))?;
                out.push(m);
            }
            Err(e) => return Err(refused(format!("bad matcher {arg:?}: {e}"))),
        }
    }
    if out.is_empty() {
        return Err(refused("a silence needs at least one matcher".to_owned()));
    }
    Ok(out)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `postableSilence` body of `silence`.
pub fn body(silence: &NewSilence) -> Result<Value, ClientError> {
    let matchers: Vec<Value> = matchers(&silence.matchers)?
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "value": m.value,
                "isRegex": matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
                "isEqual": matches!(m.op, MatchOp::Equal | MatchOp::Regex),
            })
        })
        .collect();
    Ok(json!({
        "matchers": matchers,
        "startsAt": time(silence.starts_at),
        "endsAt": time(silence.ends_at),
        "createdBy": silence.author,
        "comment": silence.comment,
    }))
}

impl NewSilence {
    /// A silence from `now` until `end` (RFC 3339) or for `duration` (default one hour), by
    /// `author` (default the `USER` of the environment).
    pub fn new(
        matchers: Vec<String>,
        duration: Option<std::time::Duration>,
        end: Option<&str>,
        author: Option<String>,
        comment: String,
        now: DateTime<Utc>,
    ) -> Result<NewSilence, ClientError> {
        let ends_at = match (end, duration) {
            (Some(end), _) => DateTime::parse_from_rfc3339(end)
                .map_err(|e| refused(format!("--end {end:?}: not an RFC 3339 time: {e}")))?
                .with_timezone(&Utc),
            (None, d) => {
                let d = d.unwrap_or(std::time::Duration::from_secs(3600));
                now + chrono::Duration::from_std(d)
                    .map_err(|_| refused("--duration is too long".to_owned()))?
            }
        };
        let author = author
            .or_else(|| std::env::var("USER").ok())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "tradewatch".to_owned());
        Ok(NewSilence {
            matchers,
            starts_at: now,
            ends_at,
            author,
            comment,
        })
    }
}

/// `tradewatch silence add`: creates the silence; gives its id.
pub async fn add(conn: &Connection, silence: &NewSilence) -> Result<String, ClientError> {
    let body = body(silence)?;
    let (_, reply) = conn
        .call(reqwest::Method::POST, "/api/v2/silences", Some(&body), &[])
        .await?;
    reply["silenceID"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| refused(format!("unexpected reply: {reply}")))
}

/// A silence's matchers as amtool prints them: `desk="fx" alertname=~"Slow.*"`.
fn matchers_text(s: &Value) -> String {
    let parts: Vec<String> = s["matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let op = match (m["isEqual"].as_bool().unwrap_or(true), m["isRegex"] == true) {
                (true, false) => MatchOp::Equal,
                (false, false) => MatchOp::NotEqual,
                (true, true) => MatchOp::Regex,
                (false, true) => MatchOp::NotRegex,
            };
            let name = m["name"].as_str().unwrap_or("");
            let value = m["value"].as_str().unwrap_or("");
            match Matcher::new(op, name, value) {
                Ok(m) => m.to_string(),
                Err(_) => format!("{name}{}{value:?}", op.as_str()),
            }
        })
        .collect();
    parts.join(" ")
}

/// `tradewatch silence list`: a table of the silences that are active or pending (or, with
/// `expired`, of the expired ones) whose matchers include `filter`; with `quiet` only the ids.
pub async fn list(
    conn: &Connection,
    filter: &[String],
    expired: bool,
    quiet: bool,
) -> Result<String, ClientError> {
    let mut path = String::from("/api/v2/silences");
    for (i, f) in filter.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str("filter=");
        path.extend(url::form_urlencoded::byte_serialize(f.as_bytes()));
    }
    let (_, body) = conn.get(&path, &[]).await?;
    let silences: Vec<&Value> = body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| (s["status"]["state"] == "expired") == expired)
        .collect();
    if quiet {
        return Ok(silences
            .iter()
            .map(|s| format!("{}\n", s["id"].as_str().unwrap_or("")))
            .collect());
    }
    if silences.is_empty() {
        return Ok(if expired {
            "No expired silence.\n".to_owned()
        } else {
            "No silence is active or pending.\n".to_owned()
        });
    }
    let str_of = |s: &Value, k: &str| s[k].as_str().unwrap_or("").to_owned();
    let rows: Vec<[String; 7]> = silences
        .iter()
        .map(|s| {
            [
                str_of(s, "id"),
                s["status"]["state"].as_str().unwrap_or("").to_owned(),
                matchers_text(s),
                str_of(s, "startsAt"),
                str_of(s, "endsAt"),
                str_of(s, "createdBy"),
                str_of(s, "comment"),
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATE",
        "MATCHERS",
        "STARTS AT",
        "ENDS AT",
        "CREATED BY",
        "COMMENT",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == cells.len() - 1 {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    Ok(out)
}

/// `tradewatch silence expire`: expires each silence, stopping at the first that cannot be.
pub async fn expire(conn: &Connection, ids: &[String]) -> Result<(), ClientError> {
    for id in ids {
        let path = format!(
            "/api/v2/silence/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let (status, _) = conn
            .call(reqwest::Method::DELETE, &path, None, &[404])
            .await?;
        if status == 404 {
            return Err(refused(format!("silence {id} not found")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_as_amtool_reads_them() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let m = matchers(&args(&[
            "DeskDown",
            "desk=fx",
            "{venue=~\"x.*\",team!=\"rates\"}",
        ]))
        .unwrap();
        let text: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "alertname=\"DeskDown\"",
                "desk=\"fx\"",
                "venue=~\"x.*\"",
                "team!=\"rates\""
            ]
        );
        assert_eq!(
            matchers(&args(&["desk=fx", "nonsense"]))
                .unwrap_err()
                .to_string(),
            "bad matcher \"nonsense\": bad matcher format: nonsense"
        );
        assert_eq!(
            matchers(&[]).unwrap_err().to_string(),
            "a silence needs at least one matcher"
        );
    }

    #[test]
    fn the_body_is_a_postable_silence() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let body = body(&NewSilence {
            matchers: vec!["desk!~\"f.*\"".into()],
            starts_at: t("2026-11-23T10:00:00Z"),
            ends_at: t("2026-11-23T11:00:00Z"),
            author: "ops".into(),
            comment: "move".into(),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({
                "matchers": [{"name": "desk", "value": "f.*", "isRegex": true, "isEqual": false}],
                "startsAt": "2026-11-23T10:00:00.000Z",
                "endsAt": "2026-11-23T11:00:00.000Z",
                "createdBy": "ops",
                "comment": "move",
            })
        );
        assert_eq!(matchers_text(&body), "desk!~\"f.*\"");
    }
}
