//! Unit tests of `--format` templates on docker-shaped data.

use super::*;
use serde_json::json;

/// A trimmed `docker inspect` of a container (keys in sorted order, as serde_json keeps them).
fn container() -> Value {
    json!({
        "Args": ["-c", "echo hi"],
        "Config": {
            "Cmd": null,
            "Env": ["A=1", "B=2"],
            "Labels": {"com.example.role": "invoker", "a": "1"}
        },
        "Id": "4f1c2d",
        "Mounts": [
            {"Destination": "/a", "Source": "/var/lib/a"},
            {"Destination": "/b", "Source": "/var/lib/b"}
        ],
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
        "State": {"ExitCode": 0, "OOMKilled": false, "Pid": 4242, "Running": true}
    })
}

fn render(text: &str, data: &Value) -> String {
    Template::parse(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .render(data)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    let e = Template::parse(text).expect_err(text).to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains(&format!("{text:?}")), "{e}");
    e
}

fn render_err(text: &str, data: &Value) -> String {
    let t = Template::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let e = t.render(data).expect_err(text).to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains(&format!("{text:?}")), "{e}");
    e
}

#[test]
fn openwhisk_invoker_templates() {
    let version = json!({"Client": {"Version": "20.10.24"}});
    assert_eq!(render("{{.Client.Version}}", &version), "20.10.24");
    let mut c = container();
    assert_eq!(render("{{.State.OOMKilled}}", &c), "false");
    c["State"]["OOMKilled"] = json!(true);
    assert_eq!(render("{{.State.OOMKilled}}", &c), "true");
    let ip = "{{.NetworkSettings.Networks.bridge.IPAddress}}";
    assert_eq!(render(ip, &c), "172.17.0.2");
    c["NetworkSettings"]["Networks"] = json!({"host": {}});
    assert_eq!(render(ip, &c), "<no value>");
}

#[test]
fn missing_and_null_print_no_value() {
    let c = container();
    for t in [
        "{{.Nope}}",
        "{{.Id.Nope}}",
        "{{.Config.Cmd}}",
        "{{.Config.Cmd.X}}",
    ] {
        assert_eq!(render(t, &c), "<no value>", "{t}");
    }
    assert_eq!(render("{{.}}", &Value::Null), "<no value>");
    assert_eq!(render("{{index .Config.Labels \"b\"}}", &c), "<no value>");
}

#[test]
fn json_is_compact_and_unescaped() {
    let c = container();
    assert_eq!(
        render("{{json .State}}", &c),
        r#"{"ExitCode":0,"OOMKilled":false,"Pid":4242,"Running":true}"#
    );
    assert_eq!(
        render("{{json .}}", &c),
        concat!(
            r#"{"Args":["-c","echo hi"],"Config":{"Cmd":null,"Env":["A=1","B=2"],"#,
            r#""Labels":{"a":"1","com.example.role":"invoker"}},"Id":"4f1c2d","#,
            r#""Mounts":[{"Destination":"/a","Source":"/var/lib/a"},"#,
            r#"{"Destination":"/b","Source":"/var/lib/b"}],"#,
            r#""NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.2"}}},"#,
            r#""State":{"ExitCode":0,"OOMKilled":false,"Pid":4242,"Running":true}}"#
        )
    );
    let odd = json!({"s": "<a&b>\"\\\n\t\u{1}\u{8}\u{2028}é", "f": [1.5, 1e21, 1e-7, 3.0]});
    assert_eq!(
        render("{{json .s}} {{json .f}}", &odd),
        r#""<a&b>\"\\\n\t\u0001\b\u2028é" [1.5,1e+21,1e-7,3]"#
    );
    assert_eq!(render("{{json .Nope}}", &odd), "null");
    assert_eq!(render("{{.State | json}}", &json!({"State": {}})), "{}");
}

#[test]
fn values_print_as_go_fmt() {
    let c = container();
    assert_eq!(render("{{.State.Pid}}", &c), "4242");
    assert_eq!(render("{{.Args}}", &c), "[-c echo hi]");
    assert_eq!(
        render("{{.Config.Labels}}", &c),
        "map[a:1 com.example.role:invoker]"
    );
    let d = json!({"n": [null, true, -7, 18446744073709551615u64, {"b": [], "a": {}}]});
    assert_eq!(
        render("{{.n}}", &d),
        "[<nil> true -7 18446744073709551615 map[a:map[] b:[]]]"
    );
    let floats = json!([1.5, 1e21, 1e6, 123456.5, 0.0001, 0.00001, -2.0, 1234567.5]);
    assert_eq!(
        render("{{.}}", &floats),
        "[1.5 1e+21 1e+06 123456.5 0.0001 1e-05 -2 1.2345675e+06]"
    );
}

#[test]
fn range_and_if() {
    let mut c = container();
    assert_eq!(
        render("{{range .Mounts}}{{.Source}} {{end}}", &c),
        "/var/lib/a /var/lib/b "
    );
    assert_eq!(
        render("{{range .Config.Labels}}[{{.}}]{{end}}", &c),
        "[1][invoker]"
    );
    assert_eq!(render("{{range .Nope}}x{{else}}none{{end}}", &c), "none");
    assert_eq!(render("{{range .Config.Cmd}}x{{end}}.", &c), ".");
    let updown = "{{if .State.Running}}up{{else}}down{{end}}";
    assert_eq!(render(updown, &c), "up");
    c["State"]["Running"] = json!(false);
    assert_eq!(render(updown, &c), "down");
    let chain = "{{if .A}}a{{else if .B}}b{{else if .C}}c{{else}}none{{end}}!";
    assert_eq!(render(chain, &json!({"B": 1, "C": 1})), "b!");
    assert_eq!(render(chain, &json!({"C": "x"})), "c!");
    assert_eq!(render(chain, &json!({"A": [], "B": {}, "C": ""})), "none!");
    let nested = "{{range .}}{{if .on}}{{range .xs}}{{.}}{{end}}{{end}};{{end}}";
    let d = json!([{"on": true, "xs": [1, 2]}, {"on": 0, "xs": [3]}, {"on": 0.5, "xs": []}]);
    assert_eq!(render(nested, &d), "12;;;");
}

#[test]
fn truthiness_follows_go() {
    let t = "{{if .}}T{{else}}F{{end}}";
    for (v, want) in [
        (json!(false), "F"),
        (json!(0), "F"),
        (json!(0.0), "F"),
        (json!(null), "F"),
        (json!(""), "F"),
        (json!([]), "F"),
        (json!({}), "F"),
        (json!(true), "T"),
        (json!(-1), "T"),
        (json!("0"), "T"),
        (json!([0]), "T"),
        (json!({"a": null}), "T"),
    ] {
        assert_eq!(render(t, &v), want, "{v}");
    }
}

#[test]
fn trim_markers_and_comments() {
    let c = container();
    assert_eq!(render("a \n\t{{- .Id -}} \n b", &c), "a4f1c2db");
    assert_eq!(render("a {{- .Id}} b", &c), "a4f1c2d b");
    assert_eq!(render("a {{.Id -}}\n b", &c), "a 4f1c2db");
    assert_eq!(
        render("{{range .Args -}}\n  {{.}}\n{{- end}}", &c),
        "-cecho hi"
    );
    assert_eq!(render("a {{/* note */}} b", &c), "a  b");
    assert_eq!(render("a {{- /* note */ -}} b", &c), "ab");
    assert_eq!(render("{{-3}}", &c), "-3");
    assert_eq!(render("x{{  .Id   -}}  y", &c), "x4f1c2dy");
}

#[test]
fn functions_and_literals() {
    let c = container();
    assert_eq!(render(r#"{{join .Args ","}}"#, &c), "-c,echo hi");
    assert_eq!(render(r#"{{join .Nope ","}}"#, &c), "");
    assert_eq!(render("{{upper .Id}} {{lower \"ÀB\"}}", &c), "4F1C2D àb");
    assert_eq!(render("{{upper \"straße\"}}", &c), "STRAßE");
    assert_eq!(
        render("{{len .Args}} {{len .Config.Labels}} {{len \"é\"}}", &c),
        "2 2 2"
    );
    assert_eq!(
        render(r#"{{index .Config.Labels "com.example.role"}}"#, &c),
        "invoker"
    );
    assert_eq!(render("{{index .Mounts 1 \"Source\"}}", &c), "/var/lib/b");
    assert_eq!(
        render("{{index .Id 0}} {{index .}}", &json!({"Id": "A"})),
        "65 map[Id:A]"
    );
}

#[test]
fn pipelines_and_parentheses() {
    let c = container();
    assert_eq!(render("{{.Id | upper | lower}}", &c), "4f1c2d");
    assert_eq!(render("{{\"a\" | index .Config.Labels}}", &c), "1");
    assert_eq!(render("{{len (index .Mounts 0)}}", &c), "2");
    assert_eq!(
        render("{{json (index .Mounts 0 \"Source\")}}", &c),
        r#""/var/lib/a""#
    );
    assert_eq!(render("{{if (len .Args)}}some{{end}}", &c), "some");
}

#[test]
fn literals_keep_go_syntax() {
    let d = Value::Null;
    assert_eq!(render(r#"{{"a\tb\"\\\x41\u00e9\101"}}"#, &d), "a\tb\"\\AéA");
    assert_eq!(render("{{`raw\\n`}}", &d), "raw\\n");
    assert_eq!(
        render("{{0x1F}} {{017}} {{-2}} {{1.5}} {{1e3}} {{true}}", &d),
        "31 15 -2 1.5 1000 true"
    );
    // docker takes --format literally: a backslash-n in the text stays two characters.
    assert_eq!(render(r"{{.A}}\n", &json!({"A": 1})), r"1\n");
    assert_eq!(render("a }} b {", &d), "a }} b {");
}

#[test]
fn parse_errors_name_the_template() {
    for (text, why) in [
        ("{{.Foo", "unclosed action"),
        ("{{.Foo}", "unexpected '}' in action"),
        ("a\n{{.Foo", "unclosed action"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{if .A}}x", "missing {{end}} for {{if}}"),
        (
            "{{range .A}}{{if .B}}{{end}}",
            "missing {{end}} for {{range}}",
        ),
        ("{{if .A}}{{else}}{{else}}{{end}}", "after {{else}}"),
        (
            "{{range .A}}{{else if .B}}{{end}}",
            "not allowed in {{range}}",
        ),
        ("{{with .A}}{{end}}", "{{with}} is not supported"),
        ("{{define \"x\"}}{{end}}", "{{define}} is not supported"),
        ("{{template \"x\"}}", "{{template}} is not supported"),
        ("{{$x := .A}}", "variables"),
        ("{{range $i, $e := .A}}{{end}}", "variables"),
        ("{{title .A}}", "function \"title\" not defined"),
        ("{{printf \"%s\" .A}}", "function \"printf\" not defined"),
        ("{{}}", "missing value for command"),
        ("{{if}}{{end}}", "missing value for if"),
        ("{{json}}", "wrong number of args for json: want 1 got 0"),
        ("{{join .A}}", "wrong number of args for join: want 2 got 1"),
        (
            "{{.A | json .B}}",
            "wrong number of args for json: want 1 got 2",
        ),
        ("{{json len .A}}", "wrong number of args for len"),
        ("{{.A .B}}", "not a function"),
        ("{{.A | .B}}", "not a function"),
        ("{{(index .M 0).Source}}", "not a function"),
        ("{{(.A}}", "unclosed left paren"),
        ("{{.A)}}", "unexpected \")\""),
        ("{{\"abc}}", "unterminated quoted string"),
        ("{{\"a\nb\"}}", "unterminated quoted string"),
        ("{{`abc}}", "unterminated raw quoted string"),
        ("{{\"\\q\"}}", "invalid escape"),
        ("{{\"\\xff\"}}", "not supported"),
        ("{{/* x }}", "unclosed comment"),
        ("{{/* x */ .A}}", "comment ends before closing delimiter"),
        ("{{1.2.3}}", "bad number syntax"),
        ("{{-}}", "bad number syntax"),
        ("{{'a'}}", "unexpected '\\'' in action"),
        ("{{nil}}", "nil is not a command"),
        ("{{.A {{.B}}", "unexpected '{' in action"),
        ("{{end 1}}", "unexpected \"1\" in action"),
    ] {
        let e = parse_err(text);
        assert!(e.starts_with("invalid --format template "), "{e}");
        assert!(e.contains(why), "{text}: {e}");
    }
    assert_eq!(
        parse_err("{{.Foo").as_str(),
        r#"invalid --format template "{{.Foo": unclosed action"#
    );
}

#[test]
fn render_errors_name_the_template() {
    let c = container();
    for (text, why) in [
        ("{{index .Args 5}}", "index out of range: 5"),
        ("{{index .Args -1}}", "index out of range: -1"),
        (
            "{{index .Args \"x\"}}",
            "cannot index slice/array with type string",
        ),
        (
            "{{index .Config.Labels 1}}",
            "cannot index an object with a number",
        ),
        ("{{index .Nope \"x\"}}", "index of untyped nil"),
        ("{{index .Config.Cmd 0}}", "index of nil pointer"),
        ("{{index .State.Pid 0}}", "can't index item of type number"),
        ("{{join .State \",\"}}", "expected []string; got object"),
        ("{{join .Mounts \",\"}}", "array holding a object"),
        (
            "{{join .Args 1}}",
            "join: wrong type for value; expected string; got number",
        ),
        (
            "{{upper .State.Pid}}",
            "upper: wrong type for value; expected string",
        ),
        ("{{lower .Nope}}", "lower: invalid value; expected string"),
        ("{{len .State.Pid}}", "len of type number"),
        ("{{len .Nope}}", "len of nil"),
        ("{{range .Id}}{{end}}", "range can't iterate over a string"),
    ] {
        let e = render_err(text, &c);
        assert!(e.starts_with("cannot apply --format template "), "{e}");
        assert!(e.contains(why), "{text}: {e}");
    }
    let multi = "line one\n{{index .Args 9}}";
    assert!(render_err(multi, &c).contains(r#""line one\n{{index .Args 9}}""#));
}

#[test]
fn nesting_is_bounded() {
    let deep_parens = format!("{{{{{}.{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_err(&deep_parens).contains("nested too deeply"));
    let deep_ifs = format!("{}{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
    assert!(parse_err(&deep_ifs).contains("nested too deeply"));
    let ok = format!(
        "{}x{}",
        "{{if 1}}".repeat(MAX_DEPTH),
        "{{end}}".repeat(MAX_DEPTH)
    );
    assert_eq!(render(&ok, &Value::Null), "x");
}

/// Parsing and rendering arbitrary text never panics, and every error is one line that
/// quotes the text (a deterministic stand-in for a property test: no proptest here).
#[test]
fn arbitrary_text_never_panics() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "{{/*",
        "*/}}",
        "*/",
        ".",
        ".State",
        ".Mounts",
        ".Args",
        ".Config.Labels",
        ".Nope",
        "json",
        "index",
        "len",
        "join",
        "upper",
        "lower",
        "if",
        "else",
        "end",
        "range",
        "with",
        "nil",
        "true",
        "(",
        ")",
        "|",
        "\"",
        "\"a\\n\"",
        "\\",
        "`",
        "`r`",
        "$x",
        "0",
        "1",
        "-1",
        "0x1f",
        "1e3",
        "08",
        ".5",
        "-",
        "+",
        "\"com.example.role\"",
        "\",\"",
        " ",
        "\n",
        "\t",
        "é",
        "\u{2028}",
        "{",
        "}",
        "'",
        ":=",
        "/",
        "*",
        "\\x4",
        "\\u12",
        "\\777",
    ];
    let data = container();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut parsed, mut rendered) = (0, 0);
    for _ in 0..30_000 {
        let n = next() % 14;
        let mut text = String::new();
        for _ in 0..n {
            let r = next();
            if r % 11 == 0 {
                text.push(char::from_u32((r >> 8) as u32 % 0x3000).unwrap_or('?'));
            } else {
                text.push_str(PIECES[(r >> 8) as usize % PIECES.len()]);
            }
        }
        match Template::parse(&text) {
            Ok(t) => {
                parsed += 1;
                for d in [&data, &Value::Null, &json!([1, "a", null])] {
                    match t.render(d) {
                        Ok(_) => rendered += 1,
                        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
                    }
                }
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains('\n') && e.contains(&format!("{text:?}")), "{e}");
            }
        }
    }
    assert!(parsed > 1000 && rendered > 1000, "{parsed} {rendered}");
}
