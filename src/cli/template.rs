//! Docker's `--format` templates: the part of Go's `text/template` that users of
//! `docker inspect`, `docker version` and `docker info` write, applied to those objects' JSON.
//!
//! Supported: literal text (copied as is, no `\n` translation), `{{ }}` actions with the
//! `{{- ` / ` -}}` trim markers, `{{/* comments */}}`, `.` and field chains (`.A.B`), string
//! (`"..."`, `` `...` ``), number and boolean literals, parenthesized pipelines, `|`
//! pipelines, the functions `json`, `upper`, `lower`, `join`, `len` and `index`, and
//! `if` / `else if` / `else` / `range` / `end`. Values print as Go's `fmt` prints what
//! `encoding/json` decodes into (`[a b]`, `map[k:v]`, `<nil>`, `1e+06`); a missing field or a
//! null prints `<no value>`. Everything else (variables, `with`, `define`, `template`,
//! other functions) is refused with a [`TemplateError`].

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// How deeply blocks and parentheses may nest, so that parsing and rendering stay shallow.
const MAX_DEPTH: usize = 100;

const FUNCS: [&str; 6] = ["json", "upper", "lower", "join", "len", "index"];

/// A parsed `--format` template; [`Template::render`] applies it to one object.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    nodes: Vec<Node>,
}

/// A template that cannot be parsed or applied. The message is one line and quotes the
/// template text.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a template of the supported subset.
    #[error("invalid --format template {template:?}: {reason}")]
    Parse { template: String, reason: String },
    /// The template does not fit the data (a wrong type, an index out of range).
    #[error("cannot apply --format template {template:?}: {reason}")]
    Render { template: String, reason: String },
}

impl Template {
    /// Parses `text` as docker's CLI parses the argument of `--format`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let template = text.to_string();
        match parse_nodes(text) {
            Ok(nodes) => Ok(Template {
                text: template,
                nodes,
            }),
            Err(reason) => Err(TemplateError::Parse { template, reason }),
        }
    }

    /// Applies the template to `data`, the JSON of an inspect, version or info object.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        match exec(&self.nodes, data, &mut out) {
            Ok(()) => Ok(out),
            Err(reason) => Err(TemplateError::Render {
                template: self.text.clone(),
                reason,
            }),
        }
    }
}

type Res<T> = Result<T, String>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Print(Pipeline),
    /// Condition, then, else.
    If(Pipeline, Vec<Node>, Vec<Node>),
    /// What to range over, body, else (run when there is nothing to range over).
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// Commands joined by `|`: each command's value becomes the last argument of the next.
type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
enum Command {
    Call(&'static str, Vec<Operand>),
    Operand(Operand),
}

#[derive(Debug, Clone)]
enum Operand {
    Dot,
    Field(Vec<String>),
    Literal(Value),
    Nested(Pipeline),
}

fn check_arity(func: &str, got: usize) -> Res<()> {
    let (want, ok) = match func {
        "index" => ("at least 1", got >= 1),
        "join" => ("2", got == 2),
        _ => ("1", got == 1),
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "wrong number of args for {func}: want {want} got {got}"
        )),
    }
}

fn braces(word: &str) -> String {
    format!("{{{{{word}}}}}")
}

fn unknown_ident(name: &str) -> String {
    match name {
        "nil" => "nil is not a command".to_string(),
        "if" | "else" | "end" | "range" => format!("unexpected {} in command", braces(name)),
        "with" | "define" | "template" | "block" | "break" | "continue" => {
            format!("{} is not supported", braces(name))
        }
        _ => format!("function {name:?} not defined"),
    }
}

fn parse_nodes(text: &str) -> Res<Vec<Node>> {
    let mut blocks = Blocks::default();
    let (mut pos, mut trim_next) = (0, false);
    while let Some(off) = text[pos..].find("{{") {
        let open = pos + off;
        let trim_prev = left_trim_marker(&text[open + 2..]);
        let start = open + if trim_prev { 4 } else { 2 };
        blocks.text(trimmed(&text[pos..open], trim_next, trim_prev));
        let mut lexer = Lexer {
            src: text,
            pos: start,
        };
        trim_next = if text[start..].starts_with("/*") {
            lexer.comment()?
        } else {
            let (toks, trim) = lexer.action()?;
            blocks.action(Parser { toks, i: 0 }.action()?)?;
            trim
        };
        pos = lexer.pos;
    }
    blocks.text(trimmed(&text[pos..], trim_next, false));
    blocks.finish()
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn trimmed(mut s: &str, start: bool, end: bool) -> &str {
    if start {
        s = s.trim_start_matches(is_space);
    }
    if end {
        s = s.trim_end_matches(is_space);
    }
    s
}

/// `-` and a space right after `{{`.
fn left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

/// The closing delimiter at the start of `s`: its length and whether it trims (` -}}`).
fn right_delim(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    if b.starts_with(b"}}") {
        Some((2, false))
    } else if b.len() >= 4 && is_space(char::from(b[0])) && &b[1..4] == b"-}}" {
        Some((4, true))
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Ident(String),
    Literal(Value),
    Pipe,
    Open,
    Close,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Dot => ".".to_string(),
        Tok::Field(path) => format!(".{}", path.join(".")),
        Tok::Ident(name) => name.clone(),
        Tok::Literal(v) => v.to_string(),
        Tok::Pipe => "|".to_string(),
        Tok::Open => "(".to_string(),
        Tok::Close => ")".to_string(),
    }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    /// The tokens up to the closing delimiter, and whether that delimiter trims.
    fn action(&mut self) -> Res<(Vec<Tok>, bool)> {
        let mut toks = Vec::new();
        loop {
            let rest = self.rest();
            if let Some((n, trim)) = right_delim(rest) {
                self.pos += n;
                return Ok((toks, trim));
            }
            let Some(c) = rest.chars().next() else {
                return Err("unclosed action".to_string());
            };
            let after = &rest[c.len_utf8()..];
            let single = match c {
                '|' => Some(Tok::Pipe),
                '(' => Some(Tok::Open),
                ')' => Some(Tok::Close),
                '.' if !after.starts_with(|n: char| n.is_alphanumeric() || n == '_') => {
                    Some(Tok::Dot)
                }
                _ => None,
            };
            if is_space(c) || single.is_some() {
                self.pos += 1;
                toks.extend(single);
                continue;
            }
            toks.push(match c {
                '"' => self.quoted()?,
                '`' => self.raw()?,
                '$' => return Err("variables ($name) are not supported".to_string()),
                '.' if after.starts_with(is_ident_start) => self.field(),
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if is_ident_start(c) => Tok::Ident(self.ident().to_string()),
                c => return Err(format!("unexpected {c:?} in action")),
            });
        }
    }

    /// Skips a comment that starts at `/*`; returns whether its closing delimiter trims.
    fn comment(&mut self) -> Res<bool> {
        let end = self.rest()[2..].find("*/").ok_or("unclosed comment")?;
        self.pos += end + 4;
        let (n, trim) = right_delim(self.rest()).ok_or("comment ends before closing delimiter")?;
        self.pos += n;
        Ok(trim)
    }

    fn ident(&mut self) -> &'s str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c != '_' && !c.is_alphanumeric())
            .unwrap_or(rest.len());
        self.pos += end;
        &rest[..end]
    }

    fn field(&mut self) -> Tok {
        let mut path = Vec::new();
        while self.rest().starts_with('.') && self.rest()[1..].starts_with(is_ident_start) {
            self.pos += 1;
            path.push(self.ident().to_string());
        }
        Tok::Field(path)
    }

    fn number(&mut self) -> Res<Tok> {
        let rest = self.rest();
        let (mut end, mut prev) = (0, '+');
        for (i, c) in rest.char_indices() {
            let sign_ok = i == 0 || "eEpP".contains(prev);
            if !(c.is_ascii_alphanumeric() || "_.".contains(c) || sign_ok && "+-".contains(c)) {
                break;
            }
            (end, prev) = (i + 1, c);
        }
        let text = &rest[..end];
        self.pos += end;
        let number = parse_number(text).map(Tok::Literal);
        number.ok_or_else(|| format!("bad number syntax: {text:?}"))
    }

    fn quoted(&mut self) -> Res<Tok> {
        const SIMPLE: [(char, char); 9] = [
            ('n', '\n'),
            ('t', '\t'),
            ('r', '\r'),
            ('"', '"'),
            ('\\', '\\'),
            ('a', '\u{7}'),
            ('b', '\u{8}'),
            ('f', '\u{c}'),
            ('v', '\u{b}'),
        ];
        let mut out = String::new();
        let mut chars = self.rest()[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 2;
                    return Ok(Tok::Literal(Value::String(out)));
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let simple = SIMPLE.iter().find(|(name, _)| *name == e);
                    out.push(match e {
                        _ if simple.is_some() => simple.map_or(e, |(_, code)| *code),
                        'x' => escaped(&mut chars, 16, 2, 0)?,
                        'u' => escaped(&mut chars, 16, 4, 0)?,
                        'U' => escaped(&mut chars, 16, 8, 0)?,
                        '0'..='7' => escaped(&mut chars, 8, 2, e.to_digit(8).unwrap_or(0))?,
                        '\n' => break,
                        _ => return Err(format!("invalid escape \\{e:?} in quoted string")),
                    });
                }
                c => out.push(c),
            }
        }
        Err("unterminated quoted string".to_string())
    }

    fn raw(&mut self) -> Res<Tok> {
        let body = &self.rest()[1..];
        let end = body.find('`').ok_or("unterminated raw quoted string")?;
        self.pos += end + 2;
        Ok(Tok::Literal(Value::String(body[..end].replace('\r', ""))))
    }
}

/// The character of a `\x`, `\u`, `\U` or octal escape: `n` more digits in `radix` after
/// `first`. `\x` and octal escapes name bytes; only ASCII ones are accepted.
fn escaped(chars: &mut std::str::CharIndices, radix: u32, n: usize, first: u32) -> Res<char> {
    let mut code = first;
    for _ in 0..n {
        let d = chars.next().and_then(|(_, c)| c.to_digit(radix));
        code = code * radix + d.ok_or("invalid escape in quoted string")?;
    }
    let byte_escape = radix == 8 || n == 2;
    char::from_u32(code)
        .filter(|c| !byte_escape || c.is_ascii())
        .ok_or_else(|| format!("escape of code {code:#x} is not supported in quoted string"))
}

/// A Go number literal: decimal, hex (`0x`), octal (`0o`, leading `0`), binary (`0b`) or
/// floating point, with an optional sign.
fn parse_number(text: &str) -> Option<Value> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let digits = body.bytes().all(|b| b.is_ascii_digit());
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .into_iter()
    .find_map(|(p, radix)| body.strip_prefix(p).map(|d| (radix, d)))
    .or((digits && body.len() > 1 && body.starts_with('0')).then(|| (8, &body[1..])));
    let magnitude = match radix {
        Some((_, d)) if !d.starts_with(|c: char| c.is_ascii_alphanumeric()) => return None,
        Some((radix, d)) => Some(u64::from_str_radix(d, radix).ok()?),
        None if digits => body.parse::<u64>().ok(),
        None => None,
    };
    if let Some(m) = magnitude {
        return if neg {
            0i64.checked_sub_unsigned(m).map(Value::from)
        } else {
            Some(m.into())
        };
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
    {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}

enum Action {
    Print(Pipeline),
    If(Pipeline),
    ElseIf(Pipeline),
    Else,
    End,
    Range(Pipeline),
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn keyword(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Ident(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn action(mut self) -> Res<Action> {
        let keyword = self.keyword().map(str::to_string);
        if keyword.is_some() {
            self.i += 1;
        }
        let action = match keyword.as_deref() {
            Some("if") => Action::If(self.pipeline_for("if")?),
            Some("range") => Action::Range(self.pipeline_for("range")?),
            Some("else") if self.keyword() == Some("if") => {
                self.i += 1;
                Action::ElseIf(self.pipeline_for("else if")?)
            }
            Some("else") => Action::Else,
            Some("end") => Action::End,
            Some(w @ ("with" | "define" | "template" | "block" | "break" | "continue")) => {
                return Err(unknown_ident(w));
            }
            _ => {
                self.i = 0;
                Action::Print(self.pipeline(0)?)
            }
        };
        match self.peek() {
            Some(t) => Err(format!("unexpected {:?} in action", describe(t))),
            None => Ok(action),
        }
    }

    fn pipeline_for(&mut self, what: &str) -> Res<Pipeline> {
        match self.peek() {
            None => Err(format!("missing value for {what}")),
            Some(_) => self.pipeline(0),
        }
    }

    fn pipeline(&mut self, depth: usize) -> Res<Pipeline> {
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.command(depth, !cmds.is_empty())?);
            if !matches!(self.peek(), Some(Tok::Pipe)) {
                return Ok(cmds);
            }
            self.i += 1;
        }
    }

    /// One command; `fed` when a `|` hands it the previous command's value.
    fn command(&mut self, depth: usize, fed: bool) -> Res<Command> {
        if let Some(name) = self.keyword().filter(|w| !matches!(*w, "true" | "false")) {
            let func = FUNCS
                .into_iter()
                .find(|f| *f == name)
                .ok_or_else(|| unknown_ident(name))?;
            self.i += 1;
            let mut args = Vec::new();
            while let Some(arg) = self.operand(depth)? {
                args.push(arg);
            }
            check_arity(func, args.len() + usize::from(fed))?;
            return Ok(Command::Call(func, args));
        }
        let what = self.peek().map(describe);
        let Some(first) = self.operand(depth)? else {
            return Err(match what {
                Some(t) => format!("unexpected {t:?} in command"),
                None => "missing value for command".to_string(),
            });
        };
        let what = what.unwrap_or_default();
        if fed {
            return Err(format!("{what:?} is not a function: it cannot follow |"));
        }
        if self.operand(depth)?.is_some() {
            return Err(format!("{what:?} is not a function: it takes no arguments"));
        }
        Ok(Command::Operand(first))
    }

    fn operand(&mut self, depth: usize) -> Res<Option<Operand>> {
        let op = match self.peek() {
            None | Some(Tok::Pipe | Tok::Close) => return Ok(None),
            Some(Tok::Dot) => Operand::Dot,
            Some(Tok::Field(path)) => Operand::Field(path.clone()),
            Some(Tok::Literal(v)) => Operand::Literal(v.clone()),
            Some(Tok::Ident(w)) if matches!(w.as_str(), "true" | "false") => {
                Operand::Literal(Value::Bool(w == "true"))
            }
            Some(Tok::Ident(w)) if FUNCS.contains(&w.as_str()) => {
                return check_arity(w, 0).map(|_| None)
            }
            Some(Tok::Ident(w)) => return Err(unknown_ident(w)),
            Some(Tok::Open) if depth >= MAX_DEPTH => {
                return Err("parentheses nested too deeply".to_string())
            }
            Some(Tok::Open) => {
                self.i += 1;
                let inner = self.pipeline(depth + 1)?;
                if !matches!(self.peek(), Some(Tok::Close)) {
                    return Err("unclosed left paren".to_string());
                }
                Operand::Nested(inner)
            }
        };
        self.i += 1;
        Ok(Some(op))
    }
}

/// An `if` or `range` whose `{{end}}` has not come yet.
struct Frame {
    range: bool,
    pipe: Pipeline,
    body: Vec<Node>,
    otherwise: Option<Vec<Node>>,
    /// Opened by `{{else if}}`: the `{{end}}` that closes it closes its parent too.
    chained: bool,
}

#[derive(Default)]
struct Blocks {
    root: Vec<Node>,
    open: Vec<Frame>,
}

impl Blocks {
    fn current(&mut self) -> &mut Vec<Node> {
        match self.open.last_mut() {
            None => &mut self.root,
            Some(Frame {
                otherwise: Some(o), ..
            }) => o,
            Some(f) => &mut f.body,
        }
    }

    fn text(&mut self, s: &str) {
        if !s.is_empty() {
            self.current().push(Node::Text(s.to_string()));
        }
    }

    fn push(&mut self, range: bool, pipe: Pipeline, chained: bool) -> Res<()> {
        if self.open.len() >= MAX_DEPTH {
            return Err("blocks nested too deeply".to_string());
        }
        let (body, otherwise) = (Vec::new(), None);
        self.open.push(Frame {
            range,
            pipe,
            body,
            otherwise,
            chained,
        });
        Ok(())
    }

    /// Starts the else branch of the innermost block.
    fn start_else(&mut self, what: &str) -> Res<&mut Frame> {
        let Some(frame) = self.open.last_mut() else {
            return Err(format!(
                "unexpected {} outside {{{{if}}}} or {{{{range}}}}",
                braces(what)
            ));
        };
        if frame.otherwise.is_some() {
            return Err(format!("unexpected {} after {{{{else}}}}", braces(what)));
        }
        frame.otherwise = Some(Vec::new());
        Ok(frame)
    }

    fn action(&mut self, action: Action) -> Res<()> {
        match action {
            Action::Print(p) => self.current().push(Node::Print(p)),
            Action::If(p) => self.push(false, p, false)?,
            Action::Range(p) => self.push(true, p, false)?,
            Action::Else => _ = self.start_else("else")?,
            Action::ElseIf(_) if self.open.last().is_some_and(|f| f.range) => {
                return Err("{{else if}} is not allowed in {{range}}".to_string());
            }
            Action::ElseIf(p) => {
                self.start_else("else if")?;
                self.push(false, p, true)?;
            }
            Action::End => loop {
                let f = self.open.pop().ok_or("unexpected {{end}}")?;
                let otherwise = f.otherwise.unwrap_or_default();
                let node = match f.range {
                    true => Node::Range(f.pipe, f.body, otherwise),
                    false => Node::If(f.pipe, f.body, otherwise),
                };
                self.current().push(node);
                if !f.chained {
                    break;
                }
            },
        }
        Ok(())
    }

    fn finish(self) -> Res<Vec<Node>> {
        match self.open.last() {
            Some(f) => Err(format!(
                "missing {{{{end}}}} for {}",
                braces(if f.range { "range" } else { "if" })
            )),
            None => Ok(self.root),
        }
    }
}

/// A pipeline's value: `None` is Go's invalid value (a missing key), printed `<no value>`.
type Val<'a> = Option<Cow<'a, Value>>;

fn exec<'a>(nodes: &'a [Node], dot: &'a Value, out: &mut String) -> Res<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Print(p) => match eval(p, dot)?.as_deref() {
                None | Some(Value::Null) => out.push_str("<no value>"),
                Some(v) => write_value(v, false, out),
            },
            Node::If(cond, then, otherwise) => {
                let truth = truthy(eval(cond, dot)?.as_deref());
                exec(if truth { then } else { otherwise }, dot, out)?;
            }
            Node::Range(over, body, otherwise) => {
                let v = eval(over, dot)?;
                let items: Vec<&Value> = match v.as_deref() {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(Value::Object(m)) => sorted(m).into_iter().map(|(_, v)| v).collect(),
                    Some(other) => {
                        return Err(format!("range can't iterate over a {}", kind(other)))
                    }
                };
                if items.is_empty() {
                    exec(otherwise, dot, out)?;
                }
                for item in items {
                    exec(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval<'a>(pipe: &'a [Command], dot: &'a Value) -> Res<Val<'a>> {
    let mut fed: Option<Val<'a>> = None;
    for cmd in pipe {
        fed = Some(match cmd {
            Command::Operand(op) => operand(op, dot)?,
            Command::Call(f, args) => {
                let vals = args.iter().map(|a| operand(a, dot));
                let mut vals = vals.collect::<Res<Vec<_>>>()?;
                vals.extend(fed.take());
                call(f, vals)?
            }
        });
    }
    Ok(fed.flatten())
}

fn operand<'a>(op: &'a Operand, dot: &'a Value) -> Res<Val<'a>> {
    Ok(match op {
        Operand::Dot => Some(Cow::Borrowed(dot)),
        Operand::Field(path) => {
            let found = path.iter().try_fold(dot, |v, k| v.as_object()?.get(k));
            found.map(Cow::Borrowed)
        }
        Operand::Literal(v) => Some(Cow::Borrowed(v)),
        Operand::Nested(p) => eval(p, dot)?,
    })
}

fn call<'a>(f: &str, args: Vec<Val<'a>>) -> Res<Val<'a>> {
    let arg = |i: usize| args.get(i).and_then(|a| a.as_deref());
    let value = match f {
        "json" => {
            let mut s = String::new();
            write_value(arg(0).unwrap_or(&Value::Null), true, &mut s);
            Value::String(s)
        }
        "upper" => want_str(arg(0), f)?
            .chars()
            .map(|c| one_char(c, c.to_uppercase()))
            .collect::<String>()
            .into(),
        "lower" => want_str(arg(0), f)?
            .chars()
            .map(|c| one_char(c, c.to_lowercase()))
            .collect::<String>()
            .into(),
        "join" => {
            let sep = want_str(arg(1), f)?;
            let wrong =
                |got: &str| format!("join: wrong type for value; expected []string; got {got}");
            match arg(0) {
                None => Value::String(String::new()),
                Some(Value::Array(items)) => {
                    let parts = items.iter().map(|item| match item {
                        Value::String(s) => Ok(s.as_str()),
                        other => Err(wrong(&format!("an array holding a {}", kind(other)))),
                    });
                    Value::String(parts.collect::<Res<Vec<_>>>()?.join(sep))
                }
                Some(other) => return Err(wrong(kind(other))),
            }
        }
        "len" => Value::from(match arg(0) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            Some(Value::String(s)) => s.len(),
            None | Some(Value::Null) => return Err("len of nil".to_string()),
            Some(other) => return Err(format!("len of type {}", kind(other))),
        }),
        _ => return index(args),
    };
    Ok(Some(Cow::Owned(value)))
}

/// Go's `index item k1 k2 ...`: object keys, array and string positions.
fn index(args: Vec<Val<'_>>) -> Res<Val<'_>> {
    let mut args = args.into_iter();
    let mut item = args.next().flatten();
    for key in args {
        let key = key.ok_or("index: cannot index with <no value>")?;
        item = match item.ok_or("index of untyped nil")? {
            Cow::Borrowed(v) => lookup(v, &key)?,
            Cow::Owned(v) => lookup(&v, &key)?.map(|c| Cow::Owned(c.into_owned())),
        };
    }
    Ok(item)
}

fn lookup<'v>(item: &'v Value, key: &Value) -> Res<Val<'v>> {
    match (item, key) {
        (Value::Object(m), Value::String(k)) => Ok(m.get(k).map(Cow::Borrowed)),
        (Value::Object(_), _) => Err(format!(
            "index: cannot index an object with a {}",
            kind(key)
        )),
        (Value::Array(a), _) => Ok(a.get(position(key, a.len())?).map(Cow::Borrowed)),
        (Value::String(s), _) => {
            let byte = s.as_bytes().get(position(key, s.len())?);
            Ok(byte.map(|b| Cow::Owned(Value::from(*b))))
        }
        (Value::Null, _) => Err("index of nil pointer".to_string()),
        _ => Err(format!("can't index item of type {}", kind(item))),
    }
}

fn position(key: &Value, len: usize) -> Res<usize> {
    let Value::Number(n) = key else {
        return Err(format!("cannot index slice/array with type {}", kind(key)));
    };
    match (n.as_u64(), n.as_i64()) {
        (Some(i), _) => usize::try_from(i)
            .ok()
            .filter(|&i| i < len)
            .ok_or_else(|| format!("index out of range: {i}")),
        (None, Some(i)) => Err(format!("index out of range: {i}")),
        _ => Err("cannot index slice/array with a non-integer number".to_string()),
    }
}

fn want_str<'v>(v: Option<&'v Value>, f: &str) -> Res<&'v str> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None => Err(format!("{f}: invalid value; expected string")),
        Some(other) => Err(format!(
            "{f}: wrong type for value; expected string; got {}",
            kind(other)
        )),
    }
}

/// Go's `unicode.ToUpper`/`ToLower`: one character for one, no expansions (`ß` stays).
fn one_char(c: char, mut mapped: impl Iterator<Item = char>) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(m), None) => m,
        _ => c,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `if`: false, 0, null and empty strings, arrays and objects are false.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// An object's entries in Go's order for printing and ranging over maps: sorted keys.
fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Go's `fmt` `%v` of a decoded JSON value or, with `json`, docker's `json` function
/// (`encoding/json`, compact, without HTML escaping, keys in the value's order).
fn write_value(v: &Value, json: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str(if json { "null" } else { "<nil>" }),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&go_float(n.as_f64().unwrap_or_default(), json)),
        },
        Value::String(s) if json => json_string(s, out),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(if json { ',' } else { ' ' });
                }
                write_value(e, json, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str(if json { "{" } else { "map[" });
            let entries = if json { m.iter().collect() } else { sorted(m) };
            for (i, (k, e)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(if json { ',' } else { ' ' });
                }
                match json {
                    true => json_string(k, out),
                    false => out.push_str(k),
                }
                out.push(':');
                write_value(e, json, out);
            }
            out.push(if json { '}' } else { ']' });
        }
    }
}

/// A float64 as Go's `%v` prints it (`%g`, shortest: exponent below 1e-4 and from 1e+06) or,
/// with `json`, as `encoding/json` does (exponent below 1e-6 and from 1e+21, as `1e-7`).
fn go_float(f: f64, json: bool) -> String {
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let fixed = match json {
        true => f == 0.0 || (1e-6..1e21).contains(&f.abs()),
        false => (-4..6).contains(&exp),
    };
    let sign = if exp < 0 { '-' } else { '+' };
    match (fixed, json) {
        (true, _) => format!("{f}"),
        (false, true) => format!("{mantissa}e{sign}{}", exp.unsigned_abs()),
        (false, false) => format!("{mantissa}e{sign}{:02}", exp.unsigned_abs()),
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
