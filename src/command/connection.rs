//! Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET and the
//! CLIENT subcommands. Pure ones answer here; the rest become `ServerCmd`s
//! because they read or change session state.

use bytes::Bytes;

use super::args::{arity_error, no_args, not_integer, printable, syntax_error, Args};
use super::{ClientAttr, ClientFilter, ClientType, Plan, ServerCmd};
use crate::num::parse_i64;
use crate::protocol::Reply;

/// PING [message]
pub(super) fn ping(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    if a.remaining() > 1 {
        return Err(arity_error(a.spec().name));
    }
    Ok(Plan::Reply(match a.next_opt() {
        Some(msg) => Reply::Bulk(msg),
        None => Reply::Status("PONG".into()),
    }))
}

/// ECHO message
pub(super) fn echo(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let msg = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Reply(Reply::Bulk(msg)))
}

/// Client names and library attributes: printable ASCII without spaces
/// (Redis allows '!'..='~').
fn valid_client_attr(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn client_name(name: Bytes) -> Result<Bytes, Reply> {
    if valid_client_attr(&name) {
        Ok(name)
    } else {
        Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub(super) fn hello(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let mut protover = None;
    if !a.is_empty() {
        let v = a.next_int_or("ERR Protocol version is not an integer or out of range")?;
        if !(2..=3).contains(&v) {
            return Err(Reply::error("NOPROTO unsupported protocol version"));
        }
        protover = Some(v as u8);
    }
    let mut auth = None;
    let mut setname = None;
    while let Some(opt) = a.next_opt() {
        let left = a.remaining();
        if opt.eq_ignore_ascii_case(b"auth") && left >= 2 {
            auth = Some((a.next_bytes()?, a.next_bytes()?));
        } else if opt.eq_ignore_ascii_case(b"setname") && left >= 1 {
            setname = Some(client_name(a.next_bytes()?)?);
        } else {
            return Err(Reply::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                printable(&opt, 128)
            )));
        }
    }
    Ok(Plan::Server(ServerCmd::Hello {
        protover,
        auth,
        setname,
    }))
}

/// AUTH [username] password
pub(super) fn auth(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    if a.remaining() > 2 {
        return Err(syntax_error());
    }
    let first = a.next_bytes()?;
    let cmd = match a.next_opt() {
        Some(password) => ServerCmd::Auth {
            username: Some(first),
            password,
        },
        None => ServerCmd::Auth {
            username: None,
            password: first,
        },
    };
    Ok(Plan::Server(cmd))
}

/// SELECT index: a cluster has only database 0, so this is answered here.
pub(super) fn select(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let db = a.next_int()?;
    a.finish()?;
    if i32::try_from(db).is_err() {
        return Err(not_integer());
    }
    if db != 0 {
        return Err(Reply::error("ERR DB index is out of range"));
    }
    Ok(Plan::Reply(Reply::ok()))
}

/// QUIT (extra arguments are ignored, as in Redis)
pub(super) fn quit(_a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Server(ServerCmd::Quit))
}

/// RESET
pub(super) fn reset(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::Reset)
}

/// CLIENT ID
pub(super) fn client_id(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClientId)
}

/// CLIENT GETNAME
pub(super) fn client_getname(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClientGetName)
}

/// CLIENT INFO
pub(super) fn client_info(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClientInfo)
}

/// CLIENT SETNAME connection-name (empty clears the name)
pub(super) fn client_setname(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let name = client_name(a.next_bytes()?)?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::ClientSetName(name)))
}

/// CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
pub(super) fn client_setinfo(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let raw_attr = a.next_bytes()?;
    let value = a.next_bytes()?;
    a.finish()?;
    let attr = if raw_attr.eq_ignore_ascii_case(b"lib-name") {
        ClientAttr::LibName
    } else if raw_attr.eq_ignore_ascii_case(b"lib-ver") {
        ClientAttr::LibVer
    } else {
        return Err(Reply::Error(format!(
            "ERR Unrecognized option '{}'",
            printable(&raw_attr, 128)
        )));
    };
    if !valid_client_attr(&value) {
        return Err(Reply::Error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            printable(&raw_attr, 128)
        )));
    }
    Ok(Plan::Server(ServerCmd::ClientSetInfo { attr, value }))
}

/// CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]
/// (one filter at a time, as Redis 7 parses it)
pub(super) fn client_list(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let filter = if a.is_empty() {
        ClientFilter::All
    } else if a.remaining() == 2 && a.keyword("type") {
        let t = a.next_bytes()?;
        let ty = match () {
            _ if t.eq_ignore_ascii_case(b"normal") => ClientType::Normal,
            _ if t.eq_ignore_ascii_case(b"master") => ClientType::Master,
            _ if t.eq_ignore_ascii_case(b"replica") || t.eq_ignore_ascii_case(b"slave") => {
                ClientType::Replica
            }
            _ if t.eq_ignore_ascii_case(b"pubsub") => ClientType::PubSub,
            _ => {
                return Err(Reply::Error(format!(
                    "ERR Unknown client type '{}'",
                    printable(&t, 128)
                )))
            }
        };
        ClientFilter::Type(ty)
    } else if a.remaining() >= 2 && a.keyword("id") {
        let mut ids = Vec::with_capacity(a.remaining().min(64));
        while let Some(raw) = a.next_opt() {
            let id = parse_i64(&raw)
                .filter(|&id| id >= 1)
                .ok_or_else(|| Reply::error("ERR Invalid client ID"))?;
            ids.push(id as u64);
        }
        ClientFilter::Ids(ids)
    } else {
        return Err(syntax_error());
    };
    Ok(Plan::Server(ServerCmd::ClientList(filter)))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn ping_echo() {
        assert_eq!(plan(&["PING"]), Plan::Reply(Reply::Status("PONG".into())));
        assert_eq!(plan(&["ping", "hi"]), Plan::Reply(Reply::Bulk(b("hi"))));
        assert_eq!(
            err(&["ping", "a", "b"]),
            "ERR wrong number of arguments for 'ping' command"
        );
        assert_eq!(plan(&["echo", "x"]), Plan::Reply(Reply::Bulk(b("x"))));
        assert_eq!(
            err(&["echo"]),
            "ERR wrong number of arguments for 'echo' command"
        );
    }

    #[test]
    fn hello_forms() {
        assert_eq!(
            server(&["hello"]),
            ServerCmd::Hello {
                protover: None,
                auth: None,
                setname: None
            }
        );
        assert_eq!(
            server(&["hello", "3", "auth", "u", "p", "SETNAME", "app"]),
            ServerCmd::Hello {
                protover: Some(3),
                auth: Some((b("u"), b("p"))),
                setname: Some(b("app"))
            }
        );
        assert_eq!(err(&["hello", "4"]), "NOPROTO unsupported protocol version");
        assert_eq!(err(&["hello", "1"]), "NOPROTO unsupported protocol version");
        assert_eq!(
            err(&["hello", "x"]),
            "ERR Protocol version is not an integer or out of range"
        );
        assert_eq!(
            err(&["hello", "3", "auth", "u"]),
            "ERR Syntax error in HELLO option 'auth'"
        );
        assert_eq!(
            err(&["hello", "3", "bogus"]),
            "ERR Syntax error in HELLO option 'bogus'"
        );
        assert_eq!(
            err(&["hello", "3", "setname", "a b"]),
            "ERR Client names cannot contain spaces, newlines or special characters."
        );
    }

    #[test]
    fn auth_select_quit_reset() {
        assert_eq!(
            server(&["auth", "pw"]),
            ServerCmd::Auth {
                username: None,
                password: b("pw")
            }
        );
        assert_eq!(
            server(&["auth", "u", "pw"]),
            ServerCmd::Auth {
                username: Some(b("u")),
                password: b("pw")
            }
        );
        assert_eq!(err(&["auth", "a", "b", "c"]), "ERR syntax error");
        assert_eq!(
            err(&["auth"]),
            "ERR wrong number of arguments for 'auth' command"
        );
        assert_eq!(plan(&["select", "0"]), Plan::Reply(Reply::ok()));
        assert_eq!(err(&["select", "1"]), "ERR DB index is out of range");
        assert_eq!(
            err(&["select", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err(&["select", "4294967296"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(server(&["quit"]), ServerCmd::Quit);
        assert_eq!(server(&["quit", "extra"]), ServerCmd::Quit);
        assert_eq!(server(&["reset"]), ServerCmd::Reset);
    }

    #[test]
    fn client_subcommands() {
        assert_eq!(server(&["client", "id"]), ServerCmd::ClientId);
        assert_eq!(server(&["CLIENT", "GETNAME"]), ServerCmd::ClientGetName);
        assert_eq!(server(&["client", "info"]), ServerCmd::ClientInfo);
        assert_eq!(
            server(&["client", "setname", "app-1"]),
            ServerCmd::ClientSetName(b("app-1"))
        );
        assert_eq!(
            server(&["client", "setname", ""]),
            ServerCmd::ClientSetName(b(""))
        );
        for bad in ["a b", "a\nb", "é"] {
            assert_eq!(
                err(&["client", "setname", bad]),
                "ERR Client names cannot contain spaces, newlines or special characters."
            );
        }
        assert_eq!(
            err(&["client", "setname"]),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            err(&["client"]),
            "ERR wrong number of arguments for 'client' command"
        );
        assert_eq!(
            err(&["client", "bogus"]),
            "ERR unknown subcommand 'bogus'. Try CLIENT HELP."
        );
    }

    #[test]
    fn client_setinfo() {
        assert_eq!(
            server(&["client", "setinfo", "LIB-NAME", "redis-py"]),
            ServerCmd::ClientSetInfo {
                attr: ClientAttr::LibName,
                value: b("redis-py")
            }
        );
        assert_eq!(
            server(&["client", "setinfo", "lib-ver", "5.0.1"]),
            ServerCmd::ClientSetInfo {
                attr: ClientAttr::LibVer,
                value: b("5.0.1")
            }
        );
        assert_eq!(
            err(&["client", "setinfo", "lib-foo", "x"]),
            "ERR Unrecognized option 'lib-foo'"
        );
        assert_eq!(
            err(&["client", "setinfo", "LIB-NAME", "a b"]),
            "ERR LIB-NAME cannot contain spaces, newlines or special characters."
        );
    }

    #[test]
    fn client_list() {
        assert_eq!(
            server(&["client", "list"]),
            ServerCmd::ClientList(ClientFilter::All)
        );
        assert_eq!(
            server(&["client", "list", "type", "slave"]),
            ServerCmd::ClientList(ClientFilter::Type(ClientType::Replica))
        );
        assert_eq!(
            server(&["client", "list", "ID", "3", "4"]),
            ServerCmd::ClientList(ClientFilter::Ids(vec![3, 4]))
        );
        assert_eq!(
            err(&["client", "list", "type", "x"]),
            "ERR Unknown client type 'x'"
        );
        assert_eq!(err(&["client", "list", "id", "0"]), "ERR Invalid client ID");
        assert_eq!(err(&["client", "list", "type"]), "ERR syntax error");
        assert_eq!(
            err(&["client", "list", "type", "normal", "x"]),
            "ERR syntax error"
        );
    }
}
