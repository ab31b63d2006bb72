//! COMMAND and its subcommands, and every container's HELP — all derived
//! from the table, never written per command.
//!
//! `COMMAND DOCS` needs an argument tree; it is built from each row's
//! one-line `syntax` string (Redis docs notation): `[...]` optional,
//! `<...>` required group, `a | b` one of, `x [x ...]` multiple, UPPERCASE
//! words are tokens (a token followed by a lowercase name is that
//! argument's token). Types are inferred from argument names, with
//! per-row overrides (`arg_types`) where a name is ambiguous.

use bytes::Bytes;

use super::args::{arity_error, syntax_error, Args};
use super::table::{self, CommandSpec, Flag};
use super::{key_positions, Plan};
use crate::protocol::Reply;

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn entry(k: &str, v: Reply) -> (Reply, Reply) {
    (bulk(k), v)
}

// ---------------------------------------------------------------- COMMAND

/// COMMAND (no subcommand): info for every top-level command.
pub(super) fn command(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Reply(Reply::Array(
        table::COMMANDS.iter().map(command_info_reply).collect(),
    )))
}

/// COMMAND COUNT
pub(super) fn count(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    let n = i64::try_from(table::COMMANDS.len()).unwrap_or(i64::MAX);
    Ok(Plan::Reply(Reply::Int(n)))
}

/// COMMAND INFO [command-name ...]: Nil for unknown names; all without names.
pub(super) fn info(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let names = a.rest();
    if names.is_empty() {
        return command(a, 0);
    }
    Ok(Plan::Reply(Reply::Array(
        names
            .iter()
            .map(|n| table::lookup_full(n).map_or(Reply::Nil, command_info_reply))
            .collect(),
    )))
}

/// COMMAND DOCS [command-name ...]: a map; unknown names are left out.
pub(super) fn docs(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let names = a.rest();
    let specs: Vec<&'static CommandSpec> = if names.is_empty() {
        table::COMMANDS.iter().collect()
    } else {
        names.iter().filter_map(|n| table::lookup_full(n)).collect()
    };
    Ok(Plan::Reply(Reply::Map(
        specs
            .into_iter()
            .map(|s| (bulk(s.name), command_docs_reply(s)))
            .collect(),
    )))
}

/// COMMAND GETKEYS command [arg ...]
pub(super) fn getkeys(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let line = a.rest();
    let invalid = || Reply::error("ERR Invalid command specified");
    let top = line
        .first()
        .and_then(|n| table::lookup(n))
        .ok_or_else(invalid)?;
    let spec = if top.is_container() && line.len() >= 2 {
        top.subcommand(&line[1]).ok_or_else(invalid)?
    } else {
        top
    };
    if !spec.has_keys() {
        return Err(Reply::error("ERR The command has no key arguments"));
    }
    if !spec.arity_ok(line.len()) {
        return Err(Reply::error(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys: Vec<Reply> = key_positions(spec, line.len())
        .map(|i| Reply::Bulk(line[i].clone()))
        .collect();
    if keys.is_empty() && !spec.has(Flag::NoMandatoryKeys) {
        return Err(Reply::error("ERR Invalid arguments specified for command"));
    }
    Ok(Plan::Reply(Reply::Array(keys)))
}

/// COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]
/// Full names, subcommands included.
pub(super) fn list(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    enum Filter {
        All,
        Module,
        AclCat(Bytes),
        Pattern(Bytes),
    }
    let filter = if a.is_empty() {
        Filter::All
    } else if a.remaining() == 3 && a.keyword("filterby") {
        match a.one_of(&["module", "aclcat", "pattern"]) {
            Some(0) => Filter::Module,
            Some(1) => Filter::AclCat(a.next_bytes()?),
            Some(2) => Filter::Pattern(a.next_bytes()?),
            _ => return Err(syntax_error()),
        }
    } else {
        return Err(syntax_error());
    };
    let names = table::all_specs()
        .filter(|s| match &filter {
            Filter::All => true,
            // There are no modules.
            Filter::Module => false,
            Filter::AclCat(cat) => s
                .acl_categories()
                .any(|c| c.name().as_bytes().eq_ignore_ascii_case(cat)),
            Filter::Pattern(p) => glob_match(p, s.name.as_bytes(), true),
        })
        .map(|s| bulk(s.name))
        .collect();
    Ok(Plan::Reply(Reply::Array(names)))
}

/// `<CONTAINER> HELP`: one line per subcommand (syntax, then summary), as
/// status replies like Redis's help texts.
pub(super) fn help(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    let container = a
        .spec()
        .container_name()
        .and_then(|c| table::lookup(c.as_bytes()))
        .unwrap_or(a.spec());
    let upper = container.name.to_ascii_uppercase();
    let mut lines = vec![Reply::Status(format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    for sub in container.subcommands {
        let head = format!("{} {}", sub.short_name().to_ascii_uppercase(), sub.syntax);
        lines.push(Reply::Status(head.trim_end().to_string()));
        lines.push(Reply::Status(format!("    {}", sub.summary)));
    }
    Ok(Plan::Reply(Reply::Array(lines)))
}

/// Reached only if a container row is called alone with an arity that
/// allows it (CLIENT, CONFIG, ... have arity -2, so this is a safety net).
pub(super) fn container_alone(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Err(arity_error(a.spec().name))
}

/// One `COMMAND INFO` entry (Redis 7 shape, 10 fields).
pub fn command_info_reply(s: &'static CommandSpec) -> Reply {
    Reply::Array(vec![
        bulk(s.name),
        Reply::Int(i64::from(s.arity)),
        Reply::Set(
            s.flags
                .visible()
                .map(|f| Reply::Status(f.name().into()))
                .collect(),
        ),
        Reply::Int(i64::from(s.first_key)),
        Reply::Int(i64::from(s.last_key)),
        Reply::Int(i64::from(s.step)),
        Reply::Set(
            s.acl_categories()
                .map(|c| Reply::Status(format!("@{}", c.name())))
                .collect(),
        ),
        Reply::Set(s.tips.iter().map(|t| bulk(t)).collect()),
        Reply::Array(key_specs(s)),
        Reply::Array(s.subcommands.iter().map(command_info_reply).collect()),
    ])
}

/// Key specs derived from first/last/step: one "index" + "range" spec.
fn key_specs(s: &CommandSpec) -> Vec<Reply> {
    if !s.has_keys() {
        return vec![];
    }
    let flags: Vec<Reply> = if !s.key_flags.is_empty() {
        s.key_flags
            .iter()
            .map(|f| Reply::Status((*f).into()))
            .collect()
    } else if s.is_write() {
        vec![Reply::Status("RW".into()), Reply::Status("UPDATE".into())]
    } else {
        vec![Reply::Status("RO".into()), Reply::Status("ACCESS".into())]
    };
    let lastkey = if s.last_key < 0 {
        s.last_key
    } else {
        s.last_key - s.first_key
    };
    vec![Reply::Map(vec![
        entry("flags", Reply::Set(flags)),
        entry(
            "begin_search",
            Reply::Map(vec![
                entry("type", bulk("index")),
                entry(
                    "spec",
                    Reply::Map(vec![entry("index", Reply::Int(i64::from(s.first_key)))]),
                ),
            ]),
        ),
        entry(
            "find_keys",
            Reply::Map(vec![
                entry("type", bulk("range")),
                entry(
                    "spec",
                    Reply::Map(vec![
                        entry("lastkey", Reply::Int(i64::from(lastkey))),
                        entry("keystep", Reply::Int(i64::from(s.step))),
                        entry("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])]
}

/// One `COMMAND DOCS` value.
pub fn command_docs_reply(s: &'static CommandSpec) -> Reply {
    let mut m = vec![
        entry("summary", bulk(s.summary)),
        entry("since", bulk(s.since)),
        entry("group", bulk(s.group.name())),
        entry("complexity", bulk(s.complexity)),
    ];
    let args = arguments(s);
    if !args.is_empty() {
        m.push(entry(
            "arguments",
            Reply::Array(args.iter().map(ArgDoc::to_reply).collect()),
        ));
    }
    if s.is_container() {
        m.push(entry(
            "subcommands",
            Reply::Map(
                s.subcommands
                    .iter()
                    .map(|sub| (bulk(sub.name), command_docs_reply(sub)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(m)
}

// ------------------------------------------------------- argument trees

/// One node of a `COMMAND DOCS` argument tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgDoc {
    pub name: String,
    /// key, string, integer, double, pattern, unix-time, pure-token, oneof, block
    pub kind: &'static str,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    /// Index into the command's key specs (key arguments only).
    pub key_spec_index: Option<i64>,
    pub args: Vec<ArgDoc>,
}

impl ArgDoc {
    fn leaf(name: &str, kind: &'static str) -> ArgDoc {
        ArgDoc {
            name: name.to_string(),
            kind,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            key_spec_index: None,
            args: vec![],
        }
    }

    fn group(kind: &'static str, args: Vec<ArgDoc>) -> ArgDoc {
        let name = args
            .iter()
            .map(|a| {
                a.token
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .unwrap_or(a.name.clone())
            })
            .collect::<Vec<_>>()
            .join("-");
        ArgDoc {
            args,
            ..ArgDoc::leaf(&name, kind)
        }
    }

    pub fn to_reply(&self) -> Reply {
        let mut m = vec![
            entry("name", bulk(&self.name)),
            entry("type", bulk(self.kind)),
        ];
        if let Some(i) = self.key_spec_index {
            m.push(entry("key_spec_index", Reply::Int(i)));
        }
        if let Some(t) = &self.token {
            m.push(entry("token", bulk(t)));
        }
        let flags: Vec<Reply> = [
            (self.optional, "optional"),
            (self.multiple, "multiple"),
            (self.multiple_token, "multiple_token"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| Reply::Status(f.into()))
        .collect();
        if !flags.is_empty() {
            m.push(entry("flags", Reply::Set(flags)));
        }
        if matches!(self.kind, "oneof" | "block") {
            m.push(entry(
                "arguments",
                Reply::Array(self.args.iter().map(ArgDoc::to_reply).collect()),
            ));
        }
        Reply::Map(m)
    }
}

/// The argument tree of a row, from its syntax string.
pub fn arguments(s: &CommandSpec) -> Vec<ArgDoc> {
    let toks = tokenize(s.syntax);
    let mut pos = 0;
    let seq = parse_seq(&toks, &mut pos);
    let mut out = convert(&seq, s);
    if s.has_keys() {
        mark_keys(&mut out);
    }
    out
}

fn mark_keys(args: &mut [ArgDoc]) {
    for a in args {
        if a.kind == "key" {
            a.key_spec_index = Some(0);
        }
        mark_keys(&mut a.args);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Open(char),
    Close,
    Bar,
    Dots,
    Word(&'a str),
}

fn tokenize(s: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let special = matches!(c, '[' | ']' | '<' | '>' | '(' | ')' | '|') || c.is_whitespace();
        if special {
            if let Some(st) = start.take() {
                out.push(word(&s[st..i]));
            }
            match c {
                '[' | '<' | '(' => out.push(Tok::Open(c)),
                ']' | '>' | ')' => out.push(Tok::Close),
                '|' => out.push(Tok::Bar),
                _ => {}
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(word(&s[st..]));
    }
    out
}

fn word(w: &str) -> Tok<'_> {
    if w == "..." {
        Tok::Dots
    } else {
        Tok::Word(w)
    }
}

#[derive(Debug, Clone)]
enum Node<'a> {
    Word(&'a str),
    Dots,
    Group {
        optional: bool,
        alts: Vec<Vec<Node<'a>>>,
    },
}

/// Parse until a closing bracket (consumed by the caller) or the end;
/// returns the alternatives split on `|`, flattened into one sequence
/// when there is just one.
fn parse_seq<'a>(toks: &[Tok<'a>], pos: &mut usize) -> Vec<Node<'a>> {
    let alts = parse_alts(toks, pos);
    if alts.len() == 1 {
        alts.into_iter().next().unwrap_or_default()
    } else {
        vec![Node::Group {
            optional: false,
            alts,
        }]
    }
}

fn parse_alts<'a>(toks: &[Tok<'a>], pos: &mut usize) -> Vec<Vec<Node<'a>>> {
    let mut alts = vec![vec![]];
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let cur = alts.last_mut().expect("never empty");
        match t {
            Tok::Word(w) => cur.push(Node::Word(w)),
            Tok::Dots => cur.push(Node::Dots),
            Tok::Bar => alts.push(vec![]),
            Tok::Close => break,
            Tok::Open(c) => {
                let inner = parse_alts(toks, pos);
                cur.push(Node::Group {
                    optional: *c == '[',
                    alts: inner,
                });
            }
        }
    }
    alts
}

fn is_token(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_uppercase())
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn infer_kind(name: &str, s: &CommandSpec) -> &'static str {
    if let Some((_, t)) = s.arg_types.iter().find(|(n, _)| *n == name) {
        return t;
    }
    const INTEGERS: &[&str] = &[
        "seconds",
        "milliseconds",
        "count",
        "offset",
        "start",
        "end",
        "increment",
        "decrement",
        "cursor",
        "slot",
        "protover",
        "index",
        "client-id",
        "numkeys",
        "timeout",
    ];
    if name == "key" || name.ends_with("key") {
        "key"
    } else if name.starts_with("unix-time") {
        "unix-time"
    } else if name == "pattern" {
        "pattern"
    } else if INTEGERS.contains(&name) || name.ends_with("port") {
        "integer"
    } else {
        "string"
    }
}

/// Text of a node sequence, normalized (for `x [x ...]` detection).
fn text(seq: &[Node<'_>]) -> String {
    seq.iter()
        .map(|n| match n {
            Node::Word(w) => (*w).to_string(),
            Node::Dots => "...".to_string(),
            Node::Group { optional, alts } => {
                let inner = alts.iter().map(|a| text(a)).collect::<Vec<_>>().join(" | ");
                if *optional {
                    format!("[{inner}]")
                } else {
                    format!("<{inner}>")
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// If `n` is `[... ...]`, the text before the dots.
fn repeat_text(n: &Node<'_>) -> Option<String> {
    match n {
        Node::Group {
            optional: true,
            alts,
        } if alts.len() == 1 => match alts[0].split_last() {
            Some((Node::Dots, body)) => Some(text(body)),
            _ => None,
        },
        _ => None,
    }
}

fn convert(seq: &[Node<'_>], s: &CommandSpec) -> Vec<ArgDoc> {
    // Each produced argument with its source text, with and without token.
    let mut out: Vec<(ArgDoc, String, String)> = Vec::new();
    let mut i = 0;
    while i < seq.len() {
        if let Some(rep) = repeat_text(&seq[i]) {
            // `x [x ...]`: the last argument repeats; `a b [a b ...]`: the
            // last few form a repeating block.
            if let Some(last) = out.last_mut() {
                if last.2 == rep {
                    last.0.multiple = true;
                    i += 1;
                    continue;
                }
                if last.1 == rep {
                    last.0.multiple = true;
                    last.0.multiple_token = true;
                    i += 1;
                    continue;
                }
            }
            for k in 2..=out.len() {
                let tail = &out[out.len() - k..];
                let joined = tail
                    .iter()
                    .map(|t| t.1.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                if joined == rep {
                    let members: Vec<ArgDoc> = out.drain(out.len() - k..).map(|t| t.0).collect();
                    let mut block = ArgDoc::group("block", members);
                    block.multiple = true;
                    out.push((block, rep.clone(), rep.clone()));
                    break;
                }
            }
            i += 1;
            continue;
        }
        match &seq[i] {
            Node::Word(w) if is_token(w) => match seq.get(i + 1) {
                Some(Node::Word(v)) if !is_token(v) => {
                    let mut a = ArgDoc::leaf(v, infer_kind(v, s));
                    a.token = Some((*w).to_string());
                    out.push((a, format!("{w} {v}"), (*v).to_string()));
                    i += 2;
                }
                Some(
                    g @ Node::Group {
                        optional: false, ..
                    },
                ) => {
                    let mut a = group_arg(g, s);
                    a.token = Some((*w).to_string());
                    let t = text(std::slice::from_ref(g));
                    out.push((a, format!("{w} {t}"), t));
                    i += 2;
                }
                _ => {
                    let mut a = ArgDoc::leaf(&w.to_ascii_lowercase(), "pure-token");
                    a.token = Some((*w).to_string());
                    out.push((a, (*w).to_string(), (*w).to_string()));
                    i += 1;
                }
            },
            Node::Word(w) => {
                out.push((
                    ArgDoc::leaf(w, infer_kind(w, s)),
                    (*w).to_string(),
                    (*w).to_string(),
                ));
                i += 1;
            }
            g @ Node::Group { .. } => {
                let t = text(std::slice::from_ref(g));
                out.push((group_arg(g, s), t.clone(), t));
                i += 1;
            }
            Node::Dots => i += 1,
        }
    }
    out.into_iter().map(|t| t.0).collect()
}

/// A bracketed group as one argument: one of, a block, or its only member.
fn group_arg(g: &Node<'_>, s: &CommandSpec) -> ArgDoc {
    let Node::Group { optional, alts } = g else {
        unreachable!("group_arg takes groups");
    };
    let mut a = if alts.len() > 1 {
        ArgDoc::group("oneof", alts.iter().map(|alt| seq_arg(alt, s)).collect())
    } else {
        seq_arg(alts.first().map(Vec::as_slice).unwrap_or(&[]), s)
    };
    a.optional |= *optional;
    a
}

/// A sequence as one argument: its only member, or a block (a leading
/// token becomes the block's token: `AUTH username password`).
fn seq_arg(seq: &[Node<'_>], s: &CommandSpec) -> ArgDoc {
    let mut members = convert(seq, s);
    if members.len() == 1 {
        return members.remove(0);
    }
    let token = members
        .first_mut()
        .filter(|m| m.kind != "pure-token")
        .and_then(|m| m.token.take());
    let mut block = ArgDoc::group("block", members);
    if let Some(t) = token {
        block.name = t.to_ascii_lowercase();
        block.token = Some(t);
    }
    block
}

// ------------------------------------------------------------------ glob

/// Redis-style glob (`*`, `?`, `[a-z]`, `[^x]`, `\x`), iterative with one
/// backtrack point, so time is O(pattern * text) and there is no recursion.
pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pat, p, s[i], nocase, &eq),
            Some(b'\\') if p + 1 < pat.len() => eq(pat[p + 1], s[i]).then_some(p + 2),
            Some(&c) => eq(c, s[i]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(np), _) => {
                p = np;
                i += 1;
            }
            (None, Some((sp, si))) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

/// Match `c` against the class starting at `pat[p] == '['`; the position
/// after the class on success.
fn class_match(
    pat: &[u8],
    p: usize,
    c: u8,
    nocase: bool,
    eq: &dyn Fn(u8, u8) -> bool,
) -> Option<usize> {
    let mut j = p + 1;
    let negate = pat.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut hit = false;
    while j < pat.len() && pat[j] != b']' {
        if pat[j] == b'\\' && j + 1 < pat.len() {
            hit |= eq(pat[j + 1], c);
            j += 2;
        } else if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            let (mut lo, mut hi) = (pat[j], pat[j + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            let range = lo..=hi;
            hit |= range.contains(&c)
                || (nocase
                    && (range.contains(&c.to_ascii_lowercase())
                        || range.contains(&c.to_ascii_uppercase())));
            j += 3;
        } else {
            hit |= eq(pat[j], c);
            j += 1;
        }
    }
    // An unterminated class ends at the pattern's end, as in Redis.
    let next = if j < pat.len() { j + 1 } else { j };
    (hit != negate).then_some(next)
}
