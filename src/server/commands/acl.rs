//! ACL on the server side: which users exist, authenticating as one, the
//! permission check every command passes (`check`), the ACL LOG of
//! denials, and the ACL subcommands.
//!
//! Users come from two places. Each node loads its `aclfile` at startup
//! (plus the built-in `default` user: on, every command and key, nopass
//! unless `requirepass` gives it a password). ACL SETUSER / DELUSER go
//! through the raft log and land in the replicated state
//! (`RaftNode::acl_users`), where they override a local user of the same
//! name (DELUSER leaves a tombstone), so every node agrees on them and
//! they survive restarts and snapshots.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use super::bulk;
use crate::command::acl::{self as cmd_acl, AclCmd, Denial};
use crate::command::table::CommandSpec;
use crate::keyspace::acl::AclUser;
use crate::keyspace::{Outcome, WriteOp};
use crate::protocol::Reply;
use crate::server::connection::Session;
use crate::server::{Counter, Server};

/// Redis's `acllog-max-len` default.
const LOG_MAX: usize = 128;
/// Denials alike (reason, context, object, user) within this window are
/// one entry with a count, as in Redis.
const LOG_MERGE_MS: u64 = 60_000;

/// This node's ACL state: its local users and its ACL LOG.
#[derive(Debug)]
pub struct AclState {
    /// `default` and the `aclfile` users.
    local: BTreeMap<String, Arc<AclUser>>,
    log: Mutex<AclLog>,
    /// INFO stats `acl_access_denied_auth` / `_cmd` / `_key`.
    pub denied_auth: Counter,
    pub denied_cmd: Counter,
    pub denied_key: Counter,
}

#[derive(Debug, Default)]
struct AclLog {
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

#[derive(Debug, Clone)]
struct LogEntry {
    count: u64,
    reason: &'static str,
    object: String,
    username: String,
    created: Instant,
    created_ms: u64,
    updated_ms: u64,
    client_info: String,
    id: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AclState {
    /// The local users: the `aclfile`'s, and `default` (from `requirepass`)
    /// unless the file defines it.
    pub fn new(file_users: &[AclUser], requirepass: Option<&str>) -> AclState {
        let mut local: BTreeMap<String, Arc<AclUser>> = file_users
            .iter()
            .map(|u| (u.name.clone(), Arc::new(u.clone())))
            .collect();
        local
            .entry("default".into())
            .or_insert_with(|| Arc::new(AclUser::default_user(requirepass)));
        AclState {
            local,
            log: Mutex::new(AclLog::default()),
            denied_auth: Counter::default(),
            denied_cmd: Counter::default(),
            denied_key: Counter::default(),
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        for c in [&self.denied_auth, &self.denied_cmd, &self.denied_key] {
            c.reset();
        }
    }

    fn record(&self, reason: &'static str, object: &str, username: &str, client_info: String) {
        match reason {
            "auth" => self.denied_auth.incr(),
            "key" => self.denied_key.incr(),
            _ => self.denied_cmd.incr(),
        }
        let now = unix_ms();
        let mut log = self.log.lock();
        if let Some(e) = log.entries.iter_mut().find(|e| {
            e.reason == reason
                && e.object == object
                && e.username == username
                && now.saturating_sub(e.updated_ms) < LOG_MERGE_MS
        }) {
            e.count += 1;
            e.updated_ms = now;
            e.client_info = client_info;
            return;
        }
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(LogEntry {
            count: 1,
            reason,
            object: object.to_string(),
            username: username.to_string(),
            created: Instant::now(),
            created_ms: now,
            updated_ms: now,
            client_info,
            id,
        });
        log.entries.truncate(LOG_MAX);
    }
}

/// The user `name` as this node sees it: the replicated definition if
/// ACL SETUSER/DELUSER touched it, else the local one.
pub fn user(server: &Server, name: &str) -> Option<Arc<AclUser>> {
    let replicated = server.router.local_node().acl_users();
    match replicated.get(name) {
        Some(u) => u.clone(),
        None => server.acl.local.get(name).cloned(),
    }
}

/// Every user name with its definition (ACL LIST / USERS), sorted.
fn all_users(server: &Server) -> Vec<Arc<AclUser>> {
    let replicated = server.router.local_node().acl_users();
    let mut names: Vec<&String> = server.acl.local.keys().chain(replicated.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().filter_map(|n| user(server, n)).collect()
}

/// Whether a new connection starts authenticated (as `default`): the
/// default user is on and needs no password.
pub fn default_is_open(server: &Server) -> bool {
    user(server, "default").is_some_and(|u| u.enabled && u.nopass)
}

/// Whether the default user has no password (protected mode's test).
pub fn default_has_no_password(server: &Server) -> bool {
    user(server, "default").is_none_or(|u| u.nopass)
}

/// Authenticate `session` as `name` (AUTH, HELLO AUTH). Failures are
/// logged (reason `auth`) and answered with Redis's WRONGPASS.
pub fn authenticate(
    server: &Server,
    session: &Session,
    name: Option<&[u8]>,
    pass: &[u8],
    via: &str,
) -> Result<(), Reply> {
    let name = name.map(String::from_utf8_lossy);
    let name = name.as_deref().unwrap_or("default");
    if user(server, name).is_some_and(|u| u.check_password(pass)) {
        session.set_user(name);
        session.set_authenticated(true);
        return Ok(());
    }
    server.acl.record("auth", via, name, session.line());
    Err(Reply::error(
        "WRONGPASS invalid username-password pair or user is disabled.",
    ))
}

/// The permission check for one command line, before it runs. `Err`
/// is the reply: `-NOPERM ...` (and the denial is logged), or `None` when
/// the session's user was deleted: the connection is then closed, as Redis
/// closes the clients of a deleted user.
pub fn check(
    server: &Server,
    session: &Session,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Result<(), Option<Reply>> {
    let name = session.user();
    let Some(u) = user(server, &name) else {
        return Err(None);
    };
    match cmd_acl::check(&u, spec, args) {
        Ok(()) => Ok(()),
        Err(denial) => {
            let object = match &denial {
                Denial::Command => spec.name.to_string(),
                Denial::Key(pos) => String::from_utf8_lossy(&args[*pos]).into_owned(),
            };
            let reason = match denial {
                Denial::Command => "command",
                Denial::Key(_) => "key",
            };
            server.acl.record(reason, &object, &name, session.line());
            Err(Some(denial.reply(&name, spec)))
        }
    }
}

pub(super) async fn execute(server: &Arc<Server>, session: &Session, cmd: AclCmd) -> Reply {
    match cmd {
        AclCmd::WhoAmI => bulk(session.user().to_string()),
        AclCmd::List => Reply::Array(
            all_users(server)
                .iter()
                .map(|u| bulk(u.describe()))
                .collect(),
        ),
        AclCmd::Users => Reply::Array(
            all_users(server)
                .iter()
                .map(|u| bulk(u.name.clone()))
                .collect(),
        ),
        AclCmd::GetUser { name } => match user(server, &String::from_utf8_lossy(&name)) {
            Some(u) => getuser_reply(&u),
            None => Reply::Nil,
        },
        AclCmd::SetUser { name, rules } => setuser(server, &name, &rules).await,
        AclCmd::DelUser { names } => deluser(server, &names).await,
        AclCmd::Log { count } => log_reply(server, count),
        AclCmd::LogReset => {
            server.acl.log.lock().entries.clear();
            Reply::ok()
        }
    }
}

/// Propose an ACL change through the log (on the leader; elsewhere the
/// usual MOVED / CLUSTERDOWN).
async fn propose(server: &Server, op: WriteOp) -> Result<(), Reply> {
    let route = server
        .router
        .route_write(std::iter::empty())
        .map_err(|r| Reply::Error(r.error_text()))?;
    match server.router.write(route, op).await {
        Ok(Outcome::Err(e)) => Err(Reply::Error(e.to_string())),
        Ok(_) => Ok(()),
        Err(r) => Err(Reply::Error(r.error_text())),
    }
}

/// ACL SETUSER: the rules apply to the user as this node sees it (or a new
/// one); the resulting full definition is what is replicated.
async fn setuser(server: &Server, name: &[u8], rules: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(name).into_owned();
    let mut u = user(server, &name)
        .map(|u| (*u).clone())
        .unwrap_or_else(|| AclUser::new(&name));
    for r in rules {
        if let Err(e) = u.apply_rule(r, &cmd_acl::known_name) {
            return Reply::Error(format!(
                "ERR Error in ACL SETUSER modifier '{}': {e}",
                String::from_utf8_lossy(r)
            ));
        }
    }
    let op = WriteOp::AclSetUser {
        name: Bytes::from(name),
        rules: u.rules().into_iter().map(Bytes::from).collect(),
    };
    match propose(server, op).await {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

/// ACL DELUSER: the number of existing users deleted.
async fn deluser(server: &Server, names: &[Bytes]) -> Reply {
    let existing = names
        .iter()
        .filter(|n| user(server, &String::from_utf8_lossy(n)).is_some())
        .count();
    if existing == 0 {
        return Reply::Int(0);
    }
    match propose(
        server,
        WriteOp::AclDelUser {
            names: names.to_vec(),
        },
    )
    .await
    {
        Ok(()) => Reply::Int(existing as i64),
        Err(e) => e,
    }
}

fn getuser_reply(u: &AclUser) -> Reply {
    let mut flags = vec![bulk(if u.enabled { "on" } else { "off" })];
    if u.nopass {
        flags.push(bulk("nopass"));
    }
    flags.push(bulk("sanitize-payload"));
    let keys = u
        .keys
        .iter()
        .map(|k| format!("~{}", String::from_utf8_lossy(k)))
        .collect::<Vec<_>>()
        .join(" ");
    Reply::Map(vec![
        (bulk("flags"), Reply::Array(flags)),
        (
            bulk("passwords"),
            Reply::Array(u.password_hexes().into_iter().map(bulk).collect()),
        ),
        (bulk("commands"), bulk(u.command_rules())),
        (bulk("keys"), bulk(keys)),
        (
            bulk("channels"),
            bulk(if u.all_channels { "&*" } else { "" }),
        ),
        (bulk("selectors"), Reply::Array(vec![])),
    ])
}

fn log_reply(server: &Server, count: usize) -> Reply {
    let log = server.acl.log.lock();
    Reply::Array(
        log.entries
            .iter()
            .take(count)
            .map(|e| {
                Reply::Map(vec![
                    (bulk("count"), Reply::Int(e.count as i64)),
                    (bulk("reason"), bulk(e.reason)),
                    (bulk("context"), bulk("toplevel")),
                    (bulk("object"), bulk(e.object.clone())),
                    (bulk("username"), bulk(e.username.clone())),
                    (
                        bulk("age-seconds"),
                        Reply::Double(e.created.elapsed().as_secs_f64()),
                    ),
                    (bulk("client-info"), bulk(e.client_info.clone())),
                    (bulk("entry-id"), Reply::Int(e.id as i64)),
                    (bulk("timestamp-created"), Reply::Int(e.created_ms as i64)),
                    (
                        bulk("timestamp-last-updated"),
                        Reply::Int(e.updated_ms as i64),
                    ),
                ])
            })
            .collect(),
    )
}
