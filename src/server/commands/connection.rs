//! Connection commands that read or change the session: HELLO, AUTH,
//! QUIT, RESET, CLIENT ..., READONLY/READWRITE (parsed in
//! `command/connection.rs` and `command/cluster.rs`).

use bytes::Bytes;

use super::{bulk, text, REDIS_VERSION};
use crate::command::{ClientAttr, ClientFilter, ClientType};
use crate::protocol::Reply;
use crate::server::connection::Session;
use crate::server::Server;

/// HELLO [protover [AUTH user pass] [SETNAME name]].
pub(super) fn hello(
    server: &Server,
    session: &mut Session,
    protover: Option<u8>,
    auth: Option<(Bytes, Bytes)>,
    setname: Option<Bytes>,
) -> Reply {
    if let Some((user, pass)) = auth {
        if let Err(e) = authenticate(server, session, Some(&user), &pass) {
            return e;
        }
    } else if !session.authenticated {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(v) = protover {
        session.resp3 = v == 3;
        session.info.state.lock().resp = v;
    }
    if let Some(name) = setname {
        session.info.state.lock().name = String::from_utf8_lossy(&name).into_owned();
    }
    hello_reply(server, session)
}

/// AUTH [username] password.
pub(super) fn auth(
    server: &Server,
    session: &mut Session,
    username: Option<&[u8]>,
    password: &[u8],
) -> Reply {
    match authenticate(server, session, username, password) {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

/// QUIT: OK, then the connection closes after this batch.
pub(super) fn quit(session: &mut Session) -> Reply {
    session.closing = true;
    Reply::ok()
}

/// RESET: back to a fresh connection's state.
pub(super) fn reset(server: &Server, session: &mut Session) -> Reply {
    session.resp3 = false;
    session.readonly = false;
    session.authenticated = server.settings.requirepass.is_none();
    let mut st = session.info.state.lock();
    st.name.clear();
    st.resp = 2;
    st.readonly = false;
    Reply::Status("RESET".into())
}

pub(super) fn client_id(session: &Session) -> Reply {
    Reply::Int(session.info.id as i64)
}

pub(super) fn client_setname(session: &Session, name: &[u8]) -> Reply {
    session.info.state.lock().name = String::from_utf8_lossy(name).into_owned();
    Reply::ok()
}

pub(super) fn client_getname(session: &Session) -> Reply {
    let name = session.info.state.lock().name.clone();
    if name.is_empty() {
        Reply::Nil
    } else {
        bulk(name)
    }
}

pub(super) fn client_setinfo(session: &Session, attr: ClientAttr, value: &[u8]) -> Reply {
    let value = String::from_utf8_lossy(value).into_owned();
    let mut st = session.info.state.lock();
    match attr {
        ClientAttr::LibName => st.lib_name = value,
        ClientAttr::LibVer => st.lib_ver = value,
    }
    Reply::ok()
}

/// CLIENT LIST [TYPE t | ID id ...].
pub(super) fn client_list(server: &Server, filter: &ClientFilter) -> Reply {
    let mut out = String::new();
    for c in server.clients.all() {
        let keep = match filter {
            ClientFilter::All | ClientFilter::Type(ClientType::Normal) => true,
            ClientFilter::Type(_) => false,
            ClientFilter::Ids(ids) => ids.contains(&c.id),
        };
        if keep {
            out.push_str(&c.line());
            out.push('\n');
        }
    }
    text(out)
}

pub(super) fn client_info(session: &Session) -> Reply {
    text(format!("{}\n", session.info.line()))
}

/// READONLY (`on`) / READWRITE.
pub(super) fn readonly(session: &mut Session, on: bool) -> Reply {
    session.readonly = on;
    session.info.state.lock().readonly = on;
    Reply::ok()
}

fn authenticate(
    server: &Server,
    session: &mut Session,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Reply> {
    let Some(expected) = &server.settings.requirepass else {
        return Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && constant_time_eq(pass, expected.as_bytes()) {
        session.authenticated = true;
        Ok(())
    } else {
        Err(Reply::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// Compare without an early exit, so timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn hello_reply(server: &Server, session: &Session) -> Reply {
    let node = server.router.local_node();
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Int(if session.resp3 { 3 } else { 2 })),
        (bulk("id"), Reply::Int(session.info.id as i64)),
        (bulk("mode"), bulk("cluster")),
        (
            bulk("role"),
            bulk(if node.is_leader() {
                "master"
            } else {
                "replica"
            }),
        ),
        (bulk("modules"), Reply::Array(vec![])),
    ])
}
