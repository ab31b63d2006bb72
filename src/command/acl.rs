//! ACL: the ACL subcommands' parsing, and the permission check every
//! command passes, both driven by the command table (categories, names,
//! key positions). The user model itself is `keyspace::acl` (users set by
//! ACL SETUSER are replicated state); the server layer
//! (`server/commands/acl.rs`) holds the users and runs the check.

use bytes::Bytes;

use super::args::Args;
use super::table::{self, Acl, CommandSpec, Flag};
use super::{key_positions, Plan, ServerCmd};
use crate::keyspace::acl::AclUser;
use crate::protocol::Reply;

/// ACL subcommands the server layer executes.
#[derive(Debug, Clone, PartialEq)]
pub enum AclCmd {
    /// ACL WHOAMI: the session's user name (Bulk).
    WhoAmI,
    /// ACL LIST: one `user <name> <rules>` line per user (Array of Bulk).
    List,
    /// ACL USERS: the user names (Array of Bulk).
    Users,
    /// ACL SETUSER name rule ...: through the log; OK or the rule's error.
    SetUser { name: Bytes, rules: Vec<Bytes> },
    /// ACL DELUSER name ...: through the log; Int (users deleted).
    DelUser { names: Vec<Bytes> },
    /// ACL GETUSER name: Map (flags, passwords, commands, keys, channels,
    /// selectors) or Nil.
    GetUser { name: Bytes },
    /// ACL LOG [count]: the newest `count` (default 10) denials.
    Log { count: usize },
    /// ACL LOG RESET: OK.
    LogReset,
}

/// Whether `name` is a category (`is_category`) or a command (`get`,
/// `client`, `client|list`) the table knows: what a rule may name.
pub fn known_name(is_category: bool, name: &str) -> bool {
    if is_category {
        Acl::ALL.iter().any(|c| c.name() == name)
    } else {
        table::lookup_full(name.as_bytes()).is_some()
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The user's rules do not allow the command.
    Command,
    /// The key at this argument position matches none of the user's
    /// patterns.
    Key(usize),
}

impl Denial {
    /// Redis's `-NOPERM` text.
    pub fn reply(&self, user: &str, spec: &CommandSpec) -> Reply {
        match self {
            Denial::Command => Reply::Error(format!(
                "NOPERM User {user} has no permissions to run the '{}' command",
                spec.name
            )),
            Denial::Key(_) => Reply::error("NOPERM No permissions to access a key"),
        }
    }
}

/// The permission check: the row's categories and name against the user's
/// command rules, then every key (the row's key positions) against the
/// user's patterns. Commands that run before authentication (`no_auth`:
/// AUTH, HELLO, QUIT, RESET) are always allowed, as in Redis.
pub fn check(user: &AclUser, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denial> {
    if spec.has(Flag::NoAuth) {
        return Ok(());
    }
    let allowed = user.allows_command(spec.name, spec.container_name(), |cat| {
        spec.acl_categories().any(|c| c.name() == cat)
    });
    if !allowed {
        return Err(Denial::Command);
    }
    if user.keys.iter().any(|k| k.as_slice() == b"*") {
        return Ok(());
    }
    for pos in key_positions(spec, args.len()) {
        if !user.allows_key(&args[pos]) {
            return Err(Denial::Key(pos));
        }
    }
    Ok(())
}

/// ACL CAT [category]: the categories, or the commands in one.
pub(super) fn cat(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let Some(name) = a.next_opt() else {
        return Ok(Plan::Reply(Reply::Array(
            Acl::ALL
                .iter()
                .map(|c| Reply::Bulk(Bytes::from_static(c.name().as_bytes())))
                .collect(),
        )));
    };
    a.finish()?;
    let lower = String::from_utf8_lossy(&name).to_ascii_lowercase();
    let Some(acl) = Acl::ALL.into_iter().find(|c| c.name() == lower) else {
        return Err(Reply::Error(format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(&name)
        )));
    };
    Ok(Plan::Reply(Reply::Array(
        table::all_specs()
            .filter(|s| !s.is_container() && s.acl_categories().any(|c| c == acl))
            .map(|s| Reply::Bulk(Bytes::from_static(s.name.as_bytes())))
            .collect(),
    )))
}

pub(super) fn whoami(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::WhoAmI)))
}

pub(super) fn list(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::List)))
}

pub(super) fn users(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::Users)))
}

/// Names as Redis accepts them: no spaces or control characters.
fn user_name(name: Bytes) -> Result<Bytes, Reply> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) && !name.is_empty() {
        Ok(name)
    } else {
        Err(Reply::error(
            "ERR Usernames can't contain spaces or null characters",
        ))
    }
}

pub(super) fn setuser(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let name = user_name(a.next_bytes()?)?;
    let rules = a.rest();
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::SetUser {
        name,
        rules,
    })))
}

pub(super) fn deluser(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let names = a.rest();
    if names.iter().any(|n| n.as_ref() == b"default") {
        return Err(Reply::error("ERR The 'default' user cannot be removed"));
    }
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::DelUser { names })))
}

pub(super) fn getuser(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let name = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::Acl(AclCmd::GetUser { name })))
}

/// ACL LOG [count | RESET]
pub(super) fn log(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let cmd = match a.peek() {
        None => AclCmd::Log { count: 10 },
        Some(w) if w.eq_ignore_ascii_case(b"reset") => {
            a.next_opt();
            AclCmd::LogReset
        }
        Some(_) => {
            let n = a.next_int_or("ERR value is out of range, must be positive")?;
            let count = usize::try_from(n)
                .map_err(|_| Reply::error("ERR value is out of range, must be positive"))?;
            AclCmd::Log { count }
        }
    };
    a.finish()?;
    Ok(Plan::Server(ServerCmd::Acl(cmd)))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn user(rules: &[&str]) -> AclUser {
        let mut u = AclUser::new("alice");
        for r in rules {
            u.apply_rule(r.as_bytes(), &known_name).unwrap();
        }
        u
    }

    fn check_line(u: &AclUser, line: &[&str]) -> Result<(), Denial> {
        let args = argv(line);
        let (spec, _) = super::super::resolve(&args).unwrap();
        check(u, spec, &args)
    }

    #[test]
    fn categories_and_keys_come_from_the_table() {
        let u = user(&["on", "~cache:*", "+@read"]);
        assert_eq!(check_line(&u, &["get", "cache:x"]), Ok(()));
        assert_eq!(check_line(&u, &["get", "other:x"]), Err(Denial::Key(1)));
        assert_eq!(
            check_line(&u, &["mget", "cache:a", "other"]),
            Err(Denial::Key(2))
        );
        assert_eq!(
            check_line(&u, &["set", "cache:x", "v"]),
            Err(Denial::Command)
        );
        // no_auth commands always run.
        assert_eq!(check_line(&u, &["auth", "x"]), Ok(()));
        let admin = user(&["+@all", "-@admin", "allkeys"]);
        for line in [
            &["cluster", "forget", "x"][..],
            &["cluster", "meet", "1.2.3.4", "1"],
            &["cluster", "failover", "force"],
            &["raftcache", "snapshot"],
            &["raftcache", "transfer", "2"],
            &["raftcache", "add-learner", "2", "h:1"],
            &["raftcache", "promote", "2"],
            &["acl", "setuser", "x"],
        ] {
            assert_eq!(check_line(&admin, line), Err(Denial::Command), "{line:?}");
        }
        assert_eq!(check_line(&admin, &["get", "k"]), Ok(()));
        // FLUSHALL is @dangerous (not @admin), as in Redis.
        assert_eq!(check_line(&admin, &["flushall"]), Ok(()));
        let safe = user(&["+@all", "-@dangerous", "allkeys"]);
        assert_eq!(check_line(&safe, &["flushall"]), Err(Denial::Command));
        assert_eq!(
            check_line(&safe, &["cluster", "forget", "x"]),
            Err(Denial::Command)
        );
        assert_eq!(check_line(&admin, &["acl", "whoami"]), Ok(()));
    }

    #[test]
    fn noperm_texts() {
        let get = table::lookup(b"get").unwrap();
        assert_eq!(
            Denial::Command.reply("alice", get),
            Reply::error("NOPERM User alice has no permissions to run the 'get' command")
        );
        assert_eq!(
            Denial::Key(1).reply("alice", get),
            Reply::error("NOPERM No permissions to access a key")
        );
    }

    #[test]
    fn acl_parsing() {
        assert_eq!(
            server(&["acl", "setuser", "bob", "on", ">pw"]),
            ServerCmd::Acl(AclCmd::SetUser {
                name: b("bob"),
                rules: vec![b("on"), b(">pw")]
            })
        );
        assert_eq!(
            err(&["acl", "deluser", "default"]),
            "ERR The 'default' user cannot be removed"
        );
        assert_eq!(
            server(&["acl", "log", "reset"]),
            ServerCmd::Acl(AclCmd::LogReset)
        );
        assert_eq!(
            server(&["acl", "log", "3"]),
            ServerCmd::Acl(AclCmd::Log { count: 3 })
        );
        assert!(err(&["acl", "log", "-1"]).starts_with("ERR value is out of range"));
        assert_eq!(err(&["acl", "cat", "nope"]), "ERR Unknown category 'nope'");
        let Plan::Reply(Reply::Array(cmds)) = plan(&["acl", "cat", "admin"]) else {
            panic!()
        };
        for want in ["cluster|forget", "raftcache|snapshot", "acl|setuser"] {
            assert!(
                cmds.contains(&Reply::Bulk(Bytes::from_static(want.as_bytes()))),
                "{want}"
            );
        }
    }
}
