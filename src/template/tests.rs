//! Unit tests of the template language: each feature of Go's `text/template`, the options, the
//! bounds, HTML escaping, and errors (the broad comparison with Go is `tests/template_go.rs`).

use std::sync::Arc;

use super::*;

fn json(s: &str) -> Value {
    Value::from_json(&serde_json::from_str(s).unwrap())
}

fn render_with(set: Templates, text: &str, data: &Value) -> Result<String, String> {
    let mut set = set;
    set.parse("t", text).map_err(|e| e.to_string())?;
    set.execute("t", data).map_err(|e| e.to_string())
}

fn render(text: &str, data: &str) -> Result<String, String> {
    render_with(Templates::new(Funcs::default()), text, &json(data))
}

#[test]
fn actions_pipelines_and_variables() {
    assert_eq!(
        render("{{ .a }}-{{ .b | printf \"%03d\" }}", r#"{"a":"x","b":7}"#).unwrap(),
        "x-%!d(float64=007)"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "null").unwrap(),
        "2"
    );
    assert_eq!(
        render("{{ with $y := .a }}{{ $y }}{{ end }}", r#"{"a":"q"}"#).unwrap(),
        "q"
    );
    assert_eq!(
        render("{{ (printf \"%s%s\" \"a\" \"b\") | len }}", "null").unwrap(),
        "2"
    );
}

#[test]
fn conditionals_and_loops() {
    let d = r#"{"l":[1,2,3,4],"m":{"b":1,"a":2},"e":[]}"#;
    assert_eq!(
        render("{{ range $i, $v := .l }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if gt $v 3.0 }}{{ break }}{{ end }}{{ $v }}{{ end }}", d).unwrap(),
        "13"
    );
    assert_eq!(
        render("{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}", d).unwrap(),
        "a2b1"
    );
    assert_eq!(
        render("{{ range .e }}x{{ else }}empty{{ end }}", d).unwrap(),
        "empty"
    );
    assert_eq!(
        render("{{ if .nope }}a{{ else if .l }}b{{ else }}c{{ end }}", d).unwrap(),
        "b"
    );
    assert_eq!(
        render("{{ with .e }}a{{ else }}b{{ end }}", d).unwrap(),
        "b"
    );
}

#[test]
fn define_template_block_and_redefinition() {
    let mut set = Templates::new(Funcs::default());
    set.parse("a", r#"{{ define "x" }}X{{ . }}{{ end }}{{ block "y" 2 }}Y{{ . }}{{ end }}|{{ template "x" 1 }}"#)
        .unwrap();
    assert_eq!(set.execute("a", &Value::Nil).unwrap(), "Y2|X1");
    set.parse("b", r#"{{ define "x" }}new{{ end }}"#).unwrap();
    assert_eq!(set.execute("a", &Value::Nil).unwrap(), "Y2|new");
    // An empty definition does not replace a non-empty one.
    set.parse("c", r#"{{ define "x" }} {{ end }}"#).unwrap();
    assert_eq!(set.execute("x", &Value::Nil).unwrap(), "new");
    assert_eq!(
        set.execute("nope", &Value::Nil).unwrap_err().to_string(),
        "template: no template \"nope\" associated with template \"nope\""
    );
    assert!(set.names().contains(&"y"));
}

#[test]
fn missing_keys_by_option() {
    let data = Value::string_map(MapType::String, [("a", "1")]);
    let zero = Templates::new(Funcs::default()).missing_key(MissingKey::Zero);
    assert_eq!(render_with(zero, "[{{ .b }}]", &data).unwrap(), "[]");
    let default = Templates::new(Funcs::default());
    assert_eq!(
        render_with(default, "[{{ .b }}]", &data).unwrap(),
        "[<no value>]"
    );
    let error = Templates::new(Funcs::default()).missing_key(MissingKey::Error);
    assert_eq!(
        render_with(error, "{{ .b }}", &data).unwrap_err(),
        "template: t:1:3: executing \"t\" at <.b>: map has no entry for key \"b\""
    );
}

#[test]
fn printing_matches_go() {
    let d = r#"{"f":[1.5,1e21,100000,1234567],"m":{"z":null,"a":[true,"s"]}}"#;
    assert_eq!(
        render("{{ .f }} {{ .m }}", d).unwrap(),
        "[1.5 1e+21 100000 1.234567e+06] map[a:[true s] z:<nil>]"
    );
    assert_eq!(
        render(
            "{{ printf \"%8.3e|%-6.1f|%+d|%x|%q|%v\" 1234.5 2.25 5 \"hi\" \"a\" .m.a }}",
            d
        )
        .unwrap(),
        "1.234e+03|2.2   |+5|6869|\"a\"|[true s]"
    );
}

#[test]
fn times_and_durations_print_and_format() {
    let t = Time::parse_rfc3339("2024-03-10T08:30:00.25+05:30").unwrap();
    let data = Value::structure(
        "x",
        vec![
            ("T", Value::Time(t)),
            ("D", Value::Duration(Duration(90_000_000_000))),
        ],
    );
    let set = Templates::new(Funcs::default());
    assert_eq!(
        render_with(
            set,
            "{{ .T }}|{{ .T.Format \"Jan 2 15:04\" }}|{{ .T.UTC.Hour }}|{{ .D }}|{{ .D.Minutes }}",
            &data
        )
        .unwrap(),
        "2024-03-10 08:30:00.25 +0530 +0530|Mar 10 08:30|3|1m30s|1.5"
    );
}

#[test]
fn errors_name_template_line_and_column() {
    assert_eq!(
        render("\n\n  {{ .a.b.c }}", r#"{"a":{"b":"s"}}"#).unwrap_err(),
        "template: t:3:7: executing \"t\" at <.a.b.c>: can't evaluate field c in type interface {}"
    );
    assert_eq!(
        render("{{ index . 3 }}", "[1]").unwrap_err(),
        "template: t:1:3: executing \"t\" at <index . 3>: error calling index: index out of range: 3"
    );
    let e = parse::parse("t", "x\n{{ if }}", &|_| false).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 7, "missing value for if")
    );
}

#[test]
fn bounds_stop_runaway_templates() {
    let tight = Limits {
        max_output: 100,
        max_steps: 1_000,
    };
    let data = json(&format!("[{}]", vec!["1"; 200].join(",")));
    let set = Templates::new(Funcs::default()).limits(tight);
    let e = render_with(
        set.clone(),
        "{{ range . }}{{ range $ }}{{ end }}{{ end }}",
        &data,
    )
    .unwrap_err();
    assert!(e.contains("exceeded 1000 steps"), "{e}");
    let e = render_with(set.clone(), "{{ range . }}xxxxx{{ end }}", &data).unwrap_err();
    assert!(e.ends_with("output exceeds 100 bytes"), "{e}");
    let e = render_with(
        set,
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        &Value::Nil,
    )
    .unwrap_err();
    assert!(e.contains("exceeded maximum template depth (200)"), "{e}");
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(
        render(&format!("{{{{ {deep} }}}}"), "null").unwrap_err(),
        "template: t:1: max expression depth exceeded"
    );
    let mut big = Funcs::default();
    big.insert(
        "double",
        Func::new(&[Ty::String], |_, a| {
            Ok(Value::from(a[0].as_str().unwrap_or("").repeat(2)))
        }),
    );
    let set = Templates::new(big).limits(Limits {
        max_output: 1000,
        max_steps: 100_000,
    });
    let e = render_with(
        set,
        "{{ $s := \"ab\" }}{{ range . }}{{ $s = double $s }}{{ end }}",
        &data,
    )
    .unwrap_err();
    assert!(e.ends_with("output exceeds 1000 bytes"), "{e}");
}

#[test]
fn parsed_once_rendered_many_times_across_threads() {
    let mut set = Templates::new(Funcs::default());
    set.parse("t", "{{ . }}!").unwrap();
    let set = Arc::new(set);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let set = set.clone();
            std::thread::spawn(move || set.execute("t", &Value::Int(i)).unwrap())
        })
        .collect();
    let out: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(out, ["0!", "1!", "2!", "3!"]);
}

#[test]
fn html_sets_escape_by_context() {
    let mut f = Funcs::default();
    f.insert(
        "safeHtml",
        Func::new(&[Ty::String], |_, a| {
            Ok(Value::Html(Arc::from(a[0].as_str().unwrap_or(""))))
        }),
    );
    let mut set = Templates::new(f).html();
    set.parse(
        "t",
        r#"<!-- gone --><p title="{{ .t }}">{{ .t }} {{ safeHtml .t }}</p><a href="{{ .u }}?q={{ .t }}">x</a><a href={{ .t }}>y</a><title>{{ .t }}</title>"#,
    )
    .unwrap();
    let data = Value::string_map(
        MapType::String,
        [("t", "<b>&'x y"), ("u", "javascript:alert(1)")],
    );
    assert_eq!(
        set.execute("t", &data).unwrap(),
        "<p title=\"&lt;b&gt;&amp;&#39;x y\">&lt;b&gt;&amp;&#39;x y <b>&'x y</p>\
         <a href=\"#ZgotmplZ?q=%3cb%3e%26%27x%20y\">x</a><a href=%3cb%3e&amp;%27x%20y>y</a>\
         <title>&lt;b&gt;&amp;&#39;x y</title>"
    );
}
