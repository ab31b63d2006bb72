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
            Filter::Pattern(p) => {
                crate::glob::glob_match(&p.to_ascii_lowercase(), s.name.as_bytes())
            }
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

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn show(a: &ArgDoc) -> String {
        let mut s = format!("{}:{}", a.name, a.kind);
        if let Some(t) = &a.token {
            s += &format!("/{t}");
        }
        for (on, f) in [
            (a.optional, "?"),
            (a.multiple, "*"),
            (a.multiple_token, "+"),
        ] {
            if on {
                s += f;
            }
        }
        if let Some(i) = a.key_spec_index {
            s += &format!("#{i}");
        }
        if !a.args.is_empty() {
            s += &format!(
                "({})",
                a.args.iter().map(show).collect::<Vec<_>>().join(" ")
            );
        }
        s
    }

    fn tree(name: &str) -> String {
        let spec = table::lookup_full(name.as_bytes()).unwrap();
        arguments(spec)
            .iter()
            .map(show)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn reply(parts: &[&str]) -> Reply {
        match plan(parts) {
            Plan::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn status_set(items: &[&str]) -> Reply {
        Reply::Set(items.iter().map(|s| Reply::Status((*s).into())).collect())
    }

    fn map_get<'r>(m: &'r Reply, key: &str) -> Option<&'r Reply> {
        let Reply::Map(entries) = m else {
            panic!("not a map: {m:?}")
        };
        entries
            .iter()
            .find(|(k, _)| *k == bulk(key))
            .map(|(_, v)| v)
    }

    #[test]
    fn set_argument_tree() {
        assert_eq!(
            tree("set"),
            "key:key#0 value:string \
             nx-xx:oneof?(nx:pure-token/NX xx:pure-token/XX) \
             get:pure-token/GET? \
             ex-px-exat-pxat-keepttl:oneof?(seconds:integer/EX milliseconds:integer/PX \
             unix-time-seconds:unix-time/EXAT unix-time-milliseconds:unix-time/PXAT \
             keepttl:pure-token/KEEPTTL)"
        );
        let docs = reply(&["command", "docs", "set"]);
        let set = map_get(&docs, "set").expect("set docs");
        assert_eq!(map_get(set, "group"), Some(&bulk("string")));
        assert_eq!(map_get(set, "since"), Some(&bulk("1.0.0")));
        let Some(Reply::Array(args)) = map_get(set, "arguments") else {
            panic!("no arguments")
        };
        assert_eq!(args.len(), 5);
        assert_eq!(
            args[0],
            Reply::Map(vec![
                entry("name", bulk("key")),
                entry("type", bulk("key")),
                entry("key_spec_index", Reply::Int(0)),
            ])
        );
        assert_eq!(
            args[3],
            Reply::Map(vec![
                entry("name", bulk("get")),
                entry("type", bulk("pure-token")),
                entry("token", bulk("GET")),
                entry("flags", status_set(&["optional"])),
            ])
        );
        let Reply::Map(expiry) = &args[4] else {
            panic!()
        };
        assert_eq!(expiry[1], entry("type", bulk("oneof")));
        assert_eq!(expiry[2], entry("flags", status_set(&["optional"])));
        let (_, Reply::Array(members)) = &expiry[3] else {
            panic!()
        };
        assert_eq!(
            members[0],
            Reply::Map(vec![
                entry("name", bulk("seconds")),
                entry("type", bulk("integer")),
                entry("token", bulk("EX")),
            ])
        );
    }

    #[test]
    fn other_argument_trees() {
        assert_eq!(tree("mset"), "key-value:block*(key:key#0 value:string)");
        assert_eq!(tree("del"), "key:key*#0");
        assert_eq!(
            tree("scan"),
            "cursor:integer pattern:pattern/MATCH? count:integer/COUNT? type:string/TYPE?"
        );
        assert_eq!(
            tree("hello"),
            "protover-auth-setname:block?(protover:integer \
             auth:block/AUTH?(username:string password:string) clientname:string/SETNAME?)"
        );
        assert_eq!(
            tree("client|list"),
            "normal-master-replica-pubsub:oneof/TYPE?(normal:pure-token/NORMAL \
             master:pure-token/MASTER replica:pure-token/REPLICA pubsub:pure-token/PUBSUB) \
             client-id:integer/ID?*"
        );
        assert_eq!(tree("incrbyfloat"), "key:key#0 increment:double");
        assert_eq!(tree("cluster|keyslot"), "key:string");
        assert_eq!(tree("raftcache|promote"), "node-id:integer");
        assert_eq!(tree("randomkey"), "");
        // Every row's syntax parses into something that renders.
        for spec in table::all_specs() {
            for a in arguments(spec) {
                let _ = a.to_reply();
            }
        }
    }

    #[test]
    fn command_info_shape() {
        let info = reply(&["command", "info", "get", "nosuch", "CLIENT|SETNAME"]);
        let Reply::Array(items) = info else { panic!() };
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Reply::Nil);
        let Reply::Array(get) = &items[0] else {
            panic!()
        };
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], bulk("get"));
        assert_eq!(get[1], Reply::Int(2));
        assert_eq!(get[2], status_set(&["readonly", "fast"]));
        assert_eq!(&get[3..6], &[Reply::Int(1), Reply::Int(1), Reply::Int(1)]);
        assert_eq!(get[6], status_set(&["@read", "@string", "@fast"]));
        assert_eq!(get[7], Reply::Set(vec![]));
        let Reply::Array(specs) = &get[8] else {
            panic!()
        };
        assert_eq!(specs.len(), 1);
        let begin = map_get(&specs[0], "begin_search").unwrap();
        assert_eq!(map_get(begin, "type"), Some(&bulk("index")));
        let find = map_get(&specs[0], "find_keys").unwrap();
        let spec = map_get(find, "spec").unwrap();
        assert_eq!(map_get(spec, "lastkey"), Some(&Reply::Int(0)));
        assert_eq!(get[9], Reply::Array(vec![]));
        let Reply::Array(setname) = &items[2] else {
            panic!()
        };
        assert_eq!(setname[0], bulk("client|setname"));
        assert_eq!(setname[1], Reply::Int(3));
        assert_eq!(setname[8], Reply::Array(vec![]));

        // MSET: keys every other argument up to the end.
        let Reply::Array(m) = reply(&["command", "info", "mset"]) else {
            panic!()
        };
        let Reply::Array(mset) = &m[0] else { panic!() };
        assert_eq!(&mset[3..6], &[Reply::Int(1), Reply::Int(-1), Reply::Int(2)]);
        let Reply::Array(specs) = &mset[8] else {
            panic!()
        };
        let find = map_get(&specs[0], "find_keys").unwrap();
        let spec = map_get(find, "spec").unwrap();
        assert_eq!(map_get(spec, "lastkey"), Some(&Reply::Int(-1)));
        assert_eq!(map_get(spec, "keystep"), Some(&Reply::Int(2)));
    }

    #[test]
    fn command_all_and_count() {
        let n = table::COMMANDS.len();
        assert_eq!(reply(&["command", "count"]), Reply::Int(n as i64));
        let Reply::Array(all) = reply(&["COMMAND"]) else {
            panic!()
        };
        assert_eq!(all.len(), n);
        let Reply::Array(all_info) = reply(&["command", "info"]) else {
            panic!()
        };
        assert_eq!(all_info.len(), n);
        // Containers list their subcommands in the 10th field.
        let client = all
            .iter()
            .find(|c| matches!(c, Reply::Array(f) if f[0] == bulk("client")))
            .unwrap();
        let Reply::Array(f) = client else { panic!() };
        assert_eq!(f[1], Reply::Int(-2));
        assert_eq!(f[2], Reply::Set(vec![]));
        assert_eq!(f[6], status_set(&["@slow"]));
        let Reply::Array(subs) = &f[9] else { panic!() };
        assert_eq!(
            subs.len(),
            table::lookup(b"client").unwrap().subcommands.len()
        );
    }

    #[test]
    fn acl_categories_match_redis() {
        let cats = |name: &str| -> Vec<&str> {
            table::lookup_full(name.as_bytes())
                .unwrap()
                .acl_categories()
                .map(|c| c.name())
                .collect()
        };
        assert_eq!(cats("set"), ["write", "string", "slow"]);
        assert_eq!(cats("incr"), ["write", "string", "fast"]);
        assert_eq!(cats("del"), ["keyspace", "write", "slow"]);
        assert_eq!(cats("keys"), ["keyspace", "read", "slow", "dangerous"]);
        assert_eq!(cats("flushall"), ["keyspace", "write", "slow", "dangerous"]);
        assert_eq!(cats("dbsize"), ["keyspace", "read", "fast"]);
        assert_eq!(cats("ping"), ["fast", "connection"]);
        assert_eq!(cats("info"), ["slow", "dangerous"]);
        assert_eq!(
            cats("client|list"),
            ["admin", "slow", "dangerous", "connection"]
        );
        assert_eq!(cats("config|get"), ["admin", "slow", "dangerous"]);
        assert_eq!(cats("cluster|keyslot"), ["slow"]);
        assert_eq!(cats("command"), ["slow", "connection"]);
        assert_eq!(cats("readonly"), ["fast", "connection"]);
    }

    #[test]
    fn visible_flags() {
        let flags = |name: &str| -> Vec<&str> {
            table::lookup_full(name.as_bytes())
                .unwrap()
                .flags
                .visible()
                .map(|f| f.name())
                .collect()
        };
        assert_eq!(
            flags("hello"),
            [
                "noscript",
                "loading",
                "stale",
                "fast",
                "no_auth",
                "allow_busy"
            ]
        );
        // may_replicate is internal, as in Redis.
        assert_eq!(
            flags("config|set"),
            ["admin", "noscript", "loading", "stale"]
        );
        assert!(table::lookup_full(b"config|set")
            .unwrap()
            .has(Flag::MayReplicate));
    }

    #[test]
    fn the_table_is_consistent() {
        for spec in table::all_specs() {
            // Exactly one of write/readonly for keyed commands, and every
            // parse-to-Write command is flagged write (checked by tests in
            // the families); keyless commands never claim key positions.
            if spec.has_keys() {
                assert!(spec.is_write() != spec.is_readonly(), "{}", spec.name);
                assert!(spec.step >= 1, "{}", spec.name);
            } else {
                assert_eq!((spec.last_key, spec.step), (0, 0), "{}", spec.name);
            }
            if let Some(c) = spec.container_name() {
                let container = table::lookup(c.as_bytes()).unwrap();
                assert!(container.subcommand(spec.short_name().as_bytes()).is_some());
                assert!(spec.arity.abs() >= 2, "{}", spec.name);
            }
            if spec.is_container() {
                assert!(
                    spec.subcommand(b"help").is_some(),
                    "{} has no HELP",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn command_docs_containers_and_unknown() {
        let docs = reply(&["command", "docs", "client", "nosuch"]);
        let Reply::Map(entries) = &docs else { panic!() };
        assert_eq!(entries.len(), 1);
        let client = map_get(&docs, "client").unwrap();
        let subs = map_get(client, "subcommands").unwrap();
        assert!(map_get(subs, "client|setname").is_some());
        let Reply::Map(all) = reply(&["command", "docs"]) else {
            panic!()
        };
        assert_eq!(all.len(), table::COMMANDS.len());
    }

    #[test]
    fn getkeys() {
        assert_eq!(
            reply(&["command", "getkeys", "mset", "a", "1", "b", "2"]),
            Reply::Array(vec![bulk("a"), bulk("b")])
        );
        assert_eq!(
            reply(&["command", "getkeys", "SET", "k", "v", "EX", "1"]),
            Reply::Array(vec![bulk("k")])
        );
        assert_eq!(
            reply(&["command", "getkeys", "rename", "a", "b"]),
            Reply::Array(vec![bulk("a"), bulk("b")])
        );
        assert_eq!(
            err(&["command", "getkeys", "nosuch", "a"]),
            "ERR Invalid command specified"
        );
        assert_eq!(
            err(&["command", "getkeys", "client", "nosuch"]),
            "ERR Invalid command specified"
        );
        assert_eq!(
            err(&["command", "getkeys", "ping", "a"]),
            "ERR The command has no key arguments"
        );
        assert_eq!(
            err(&["command", "getkeys", "get", "a", "b"]),
            "ERR Invalid number of arguments specified for command"
        );
        assert_eq!(
            err(&["command", "getkeys"]),
            "ERR wrong number of arguments for 'command|getkeys' command"
        );
    }

    #[test]
    fn list_and_filters() {
        let names = |r: Reply| -> Vec<Bytes> {
            let Reply::Array(items) = r else { panic!() };
            items
                .into_iter()
                .map(|i| match i {
                    Reply::Bulk(b) => b,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let all = names(reply(&["command", "list"]));
        assert_eq!(all.len(), table::all_specs().count());
        assert!(all.contains(&bulk_bytes("client|setname")));
        let clients = names(reply(&[
            "command", "list", "filterby", "pattern", "CLIENT|*",
        ]));
        assert_eq!(
            clients.len(),
            table::lookup(b"client").unwrap().subcommands.len()
        );
        let dangerous = names(reply(&[
            "command",
            "list",
            "FILTERBY",
            "aclcat",
            "dangerous",
        ]));
        for n in ["keys", "flushall", "config|get", "info"] {
            assert!(dangerous.contains(&bulk_bytes(n)), "{n}");
        }
        assert!(!dangerous.contains(&bulk_bytes("get")));
        assert!(names(reply(&["command", "list", "filterby", "module", "x"])).is_empty());
        assert_eq!(
            err(&["command", "list", "filterby", "bogus", "x"]),
            "ERR syntax error"
        );
        assert_eq!(err(&["command", "list", "x"]), "ERR syntax error");
    }

    fn bulk_bytes(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn help_is_derived() {
        let Reply::Array(lines) = reply(&["client", "help"]) else {
            panic!()
        };
        assert_eq!(
            lines[0],
            Reply::Status("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
        );
        assert!(lines.contains(&Reply::Status("SETNAME connection-name".into())));
        assert!(lines.contains(&Reply::Status("    Sets the connection name.".into())));
        assert_eq!(
            lines.len(),
            1 + 2 * table::lookup(b"client").unwrap().subcommands.len()
        );
        for c in ["config", "cluster", "command", "raftcache"] {
            assert!(matches!(reply(&[c, "HELP"]), Reply::Array(_)));
        }
        assert_eq!(
            err(&["client", "help", "x"]),
            "ERR wrong number of arguments for 'client|help' command"
        );
    }
}
