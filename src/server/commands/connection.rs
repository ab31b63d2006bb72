//! Connection commands that read or change the session: HELLO, AUTH,
//! QUIT, RESET, CLIENT ..., READONLY/READWRITE (parsed in
//! `command/connection.rs` and `command/cluster.rs`). The `Session` is the
//! only record of a client's state: what these commands set is what
//! CLIENT LIST shows and what the connection acts on.

use bytes::Bytes;

use super::{bulk, text, REDIS_VERSION};
use crate::command::{ClientAttr, ClientFilter, ClientType};
use crate::protocol::Reply;
use crate::server::connection::Session;
use crate::server::Server;

/// HELLO [protover [AUTH user pass] [SETNAME name]].
pub(super) fn hello(
    server: &Server,
    session: &Session,
    protover: Option<u8>,
    auth: Option<(Bytes, Bytes)>,
    setname: Option<Bytes>,
) -> Reply {
    if let Some((user, pass)) = auth {
        if let Err(e) = super::acl::authenticate(server, session, Some(&user), &pass, "hello") {
            return e;
        }
    } else if !session.authenticated() {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(v) = protover {
        session.set_resp(v);
    }
    if let Some(name) = setname {
        session.update_names(|n| n.name = String::from_utf8_lossy(&name).into_owned());
    }
    hello_reply(server, session)
}

/// AUTH [username] password.
pub(super) fn auth(
    server: &Server,
    session: &Session,
    username: Option<&[u8]>,
    password: &[u8],
) -> Reply {
    match authenticate(server, session, username, password) {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

/// QUIT: OK, then the connection closes after this batch.
pub(super) fn quit(session: &Session) -> Reply {
    session.close_after_reply();
    Reply::ok()
}

/// RESET: back to a fresh connection's state.
pub(super) fn reset(server: &Server, session: &Session) -> Reply {
    session.reset(super::acl::default_is_open(server));
    Reply::Status("RESET".into())
}

pub(super) fn client_id(session: &Session) -> Reply {
    Reply::Int(session.id as i64)
}

pub(super) fn client_setname(session: &Session, name: &[u8]) -> Reply {
    session.update_names(|n| n.name = String::from_utf8_lossy(name).into_owned());
    Reply::ok()
}

pub(super) fn client_getname(session: &Session) -> Reply {
    let name = session.names().name;
    if name.is_empty() {
        Reply::Nil
    } else {
        bulk(name)
    }
}

pub(super) fn client_setinfo(session: &Session, attr: ClientAttr, value: &[u8]) -> Reply {
    let value = String::from_utf8_lossy(value).into_owned();
    session.update_names(|n| match attr {
        ClientAttr::LibName => n.lib_name = value,
        ClientAttr::LibVer => n.lib_ver = value,
    });
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
    text(format!("{}\n", session.line()))
}

/// READONLY (`on`) / READWRITE.
pub(super) fn readonly(session: &Session, on: bool) -> Reply {
    session.set_readonly(on);
    Reply::ok()
}

fn authenticate(
    server: &Server,
    session: &Session,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Reply> {
    // Redis: `AUTH <password>` alone while the default user needs none.
    if user.is_none() && super::acl::default_has_no_password(server) {
        return Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    super::acl::authenticate(server, session, user, pass, "auth")
}

fn hello_reply(server: &Server, session: &Session) -> Reply {
    let node = server.router.local_node();
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Int(i64::from(session.resp()))),
        (bulk("id"), Reply::Int(session.id as i64)),
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
