//! ACL users, Redis 7's model: a name, on/off, SHA-256 password hashes
//! (or `nopass`), key patterns, and an ordered list of command rules
//! (`+@read`, `-flushall`, `+client|list`...).
//!
//! This module is data only: it knows rule *names*, not the command table.
//! The command layer (`command::acl`) validates names against the table
//! before a rule gets here, and asks `allows_command` with the categories
//! the table gives a command.
//!
//! Replicated users are kept by `Keyspace` (`AclMap`), written by
//! `WriteOp::AclSetUser` (a user's full definition, replacing it) and
//! `WriteOp::AclDelUser` (tombstones), and included in snapshots. A full
//! definition rather than the SETUSER arguments: nodes may load different
//! `aclfile`s, and replacing is the same on every node whatever it had.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// One command rule, applied in order: the last rule that matches a
/// command decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdRule {
    /// `+@cat` (true) / `-@cat` (false); `all` matches every command.
    Category(bool, String),
    /// `+name` / `-name`; `name` is `get`, `client` (all subcommands) or
    /// `client|list`.
    Command(bool, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUser {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password.
    pub passwords: Vec<[u8; 32]>,
    /// Key glob patterns (`*` = allkeys).
    pub keys: Vec<Vec<u8>>,
    /// `&*` (pub/sub is not implemented; kept for ACL LIST).
    pub all_channels: bool,
    /// After an implicit `-@all`.
    pub commands: Vec<CmdRule>,
}

/// Why a rule was refused (the text after `ERR Error in ACL SETUSER
/// modifier '<rule>': `).
pub type RuleError = String;

pub fn sha256(pass: &[u8]) -> [u8; 32] {
    Sha256::digest(pass).into()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compare without an early exit, so timing does not reveal the prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl AclUser {
    /// A new user as `ACL SETUSER name` creates it: off, no password, no
    /// keys, no commands.
    pub fn new(name: &str) -> AclUser {
        AclUser {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            keys: Vec::new(),
            all_channels: false,
            commands: Vec::new(),
        }
    }

    /// The built-in `default` user: on, every command and key, and nopass
    /// unless `requirepass` gives it a password.
    pub fn default_user(requirepass: Option<&str>) -> AclUser {
        let mut u = AclUser::new("default");
        u.enabled = true;
        u.keys.push(b"*".to_vec());
        u.all_channels = true;
        u.commands.push(CmdRule::Category(true, "all".into()));
        match requirepass {
            Some(p) => u.passwords.push(sha256(p.as_bytes())),
            None => u.nopass = true,
        }
        u
    }

    /// A user from its full rule list (what `rules()` returned), starting
    /// from `new`. Replicated definitions are rebuilt with this; unknown
    /// rules were refused before they were proposed and are skipped here.
    pub fn from_rules<S: AsRef<[u8]>>(name: &str, rules: &[S]) -> AclUser {
        let mut u = AclUser::new(name);
        for r in rules {
            let _ = u.apply_rule(r.as_ref(), &|_, _| true);
        }
        u
    }

    /// Apply one ACL rule (Redis's SETUSER grammar). `known(is_category,
    /// name)` says whether a command/category name exists.
    pub fn apply_rule(
        &mut self,
        rule: &[u8],
        known: &dyn Fn(bool, &str) -> bool,
    ) -> Result<(), RuleError> {
        let text = std::str::from_utf8(rule).ok();
        let lower = text.map(str::to_ascii_lowercase).unwrap_or_default();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.keys = vec![b"*".to_vec()],
            "resetkeys" => self.keys.clear(),
            "allchannels" => self.all_channels = true,
            "resetchannels" => self.all_channels = false,
            "allcommands" => self.commands = vec![CmdRule::Category(true, "all".into())],
            "nocommands" => self.commands.clear(),
            "sanitize-payload" | "skip-sanitize-payload" => {}
            "reset" => {
                let name = std::mem::take(&mut self.name);
                *self = AclUser::new(&name);
            }
            _ => return self.apply_prefixed(rule, known),
        }
        Ok(())
    }

    fn apply_prefixed(
        &mut self,
        rule: &[u8],
        known: &dyn Fn(bool, &str) -> bool,
    ) -> Result<(), RuleError> {
        let Some((&first, rest)) = rule.split_first() else {
            return Err("Syntax error".into());
        };
        match first {
            b'>' => {
                let h = sha256(rest);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' => {
                let h = sha256(rest);
                if !self.passwords.contains(&h) {
                    return Err("no such password".into());
                }
                self.passwords.retain(|p| *p != h);
            }
            b'#' | b'!' => {
                let h = std::str::from_utf8(rest)
                    .ok()
                    .and_then(unhex)
                    .ok_or("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")?;
                if first == b'#' {
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                } else {
                    if !self.passwords.contains(&h) {
                        return Err("no such password".into());
                    }
                    self.passwords.retain(|p| *p != h);
                }
            }
            b'~' => {
                if !self.keys.iter().any(|k| k.as_slice() == rest) {
                    self.keys.push(rest.to_vec());
                }
            }
            b'%' => {
                return Err("Selectors and key permissions (%R~ / %W~) are not supported".into())
            }
            b'&' => {
                if rest == b"*" {
                    self.all_channels = true;
                }
            }
            b'+' | b'-' => {
                let allow = first == b'+';
                let name = std::str::from_utf8(rest)
                    .map_err(|_| "Unknown command or category name in ACL".to_string())?
                    .to_ascii_lowercase();
                if let Some(cat) = name.strip_prefix('@') {
                    if cat != "all" && !known(true, cat) {
                        return Err("Unknown command or category name in ACL".into());
                    }
                    if cat == "all" {
                        self.commands.clear();
                        if allow {
                            self.commands.push(CmdRule::Category(true, "all".into()));
                        }
                    } else {
                        self.commands
                            .push(CmdRule::Category(allow, cat.to_string()));
                    }
                } else {
                    if !known(false, &name) {
                        return Err("Unknown command or category name in ACL".into());
                    }
                    self.commands
                        .retain(|r| *r != CmdRule::Command(!allow, name.clone()));
                    self.commands.push(CmdRule::Command(allow, name));
                }
            }
            _ => return Err("Syntax error".into()),
        }
        Ok(())
    }

    /// Whether the rules allow the command `full_name` (`client|list`), in
    /// `container` (`client`) if a subcommand, whose categories satisfy
    /// `in_category`.
    pub fn allows_command(
        &self,
        full_name: &str,
        container: Option<&str>,
        in_category: impl Fn(&str) -> bool,
    ) -> bool {
        let mut ok = false;
        for r in &self.commands {
            match r {
                CmdRule::Category(allow, c) => {
                    if c == "all" || in_category(c) {
                        ok = *allow;
                    }
                }
                CmdRule::Command(allow, c) => {
                    if c == full_name || Some(c.as_str()) == container {
                        ok = *allow;
                    }
                }
            }
        }
        ok
    }

    pub fn allows_key(&self, key: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|p| p.as_slice() == b"*" || crate::glob::glob_match(p, key))
    }

    /// Whether `pass` opens this user (on, and nopass or a matching hash).
    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = sha256(pass);
        // Every hash is compared, match or not: no early exit.
        let mut found = false;
        for p in &self.passwords {
            found |= constant_time_eq(p, &h);
        }
        found
    }

    /// The command rules as Redis shows them (`+@all`, `-@all +@read -keys`).
    pub fn command_rules(&self) -> String {
        let mut out = Vec::new();
        let mut rules = self.commands.iter().peekable();
        if rules.peek() == Some(&&CmdRule::Category(true, "all".into())) {
            out.push("+@all".to_string());
            rules.next();
        } else {
            out.push("-@all".to_string());
        }
        for r in rules {
            out.push(match r {
                CmdRule::Category(a, c) => format!("{}@{c}", if *a { '+' } else { '-' }),
                CmdRule::Command(a, c) => format!("{}{c}", if *a { '+' } else { '-' }),
            });
        }
        out.join(" ")
    }

    /// The full definition as rules: `on #<hash> ~cache:* resetchannels
    /// -@all +@read` (ACL LIST after `user <name>`; also what is
    /// replicated and what `from_rules` rebuilds).
    pub fn rules(&self) -> Vec<String> {
        let mut out = vec![if self.enabled { "on" } else { "off" }.to_string()];
        if self.nopass {
            out.push("nopass".into());
        }
        for p in &self.passwords {
            out.push(format!("#{}", hex(p)));
        }
        for k in &self.keys {
            out.push(format!("~{}", String::from_utf8_lossy(k)));
        }
        out.push(
            if self.all_channels {
                "&*"
            } else {
                "resetchannels"
            }
            .into(),
        );
        out.extend(self.command_rules().split(' ').map(str::to_string));
        out
    }

    /// `user <name> <rules>` (one ACL LIST line / ACL file line).
    pub fn describe(&self) -> String {
        format!("user {} {}", self.name, self.rules().join(" "))
    }

    /// Password hashes in hex (ACL GETUSER).
    pub fn password_hexes(&self) -> Vec<String> {
        self.passwords.iter().map(|p| hex(p)).collect()
    }
}

/// The replicated users: a definition, or `None` for a user deleted by
/// ACL DELUSER (which hides an `aclfile` user of the same name too).
pub type AclMap = BTreeMap<String, Option<Arc<AclUser>>>;

/// Parse an ACL file (Redis's format: `user <name> <rule> ...` per line,
/// `#` comments and blank lines ignored). Errors name the line.
pub fn parse_acl_file(
    text: &str,
    known: &dyn Fn(bool, &str) -> bool,
) -> Result<Vec<AclUser>, String> {
    let mut users: Vec<AclUser> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("user") {
            return Err(format!("line {}: should start with user keyword", n + 1));
        }
        let Some(name) = words.next() else {
            return Err(format!("line {}: user name missing", n + 1));
        };
        if users.iter().any(|u| u.name == name) {
            return Err(format!("line {}: duplicate user '{name}' found", n + 1));
        }
        let mut u = AclUser::new(name);
        for w in words {
            u.apply_rule(w.as_bytes(), known)
                .map_err(|e| format!("line {}: Error in user declaration '{w}': {e}", n + 1))?;
        }
        users.push(u);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: bool, _: &str) -> bool {
        true
    }

    fn user(rules: &[&str]) -> AclUser {
        let mut u = AclUser::new("alice");
        for r in rules {
            u.apply_rule(r.as_bytes(), &any).unwrap();
        }
        u
    }

    #[test]
    fn rules_apply_in_order() {
        let u = user(&["on", ">secret", "~cache:*", "+@read", "-strlen"]);
        let read = |c: &str| c == "read";
        assert!(u.allows_command("get", None, read));
        assert!(!u.allows_command("strlen", None, read));
        assert!(!u.allows_command("set", None, |c| c == "write"));
        assert!(u.allows_key(b"cache:x"));
        assert!(!u.allows_key(b"other:x"));
        assert!(u.check_password(b"secret"));
        assert!(!u.check_password(b"secreT"));
        let u = user(&["+@all", "-@admin", "+client|list"]);
        let admin = |c: &str| c == "admin";
        assert!(!u.allows_command("cluster|forget", Some("cluster"), admin));
        assert!(u.allows_command("client|list", Some("client"), admin));
        let u = user(&["-@all", "+client"]);
        assert!(u.allows_command("client|kill", Some("client"), |_| false));
    }

    #[test]
    fn rules_round_trip() {
        let u = user(&["on", ">secret", "~cache:*", "+@read", "-strlen", "+get"]);
        assert_eq!(
            u.describe(),
            format!(
                "user alice on #{} ~cache:* resetchannels -@all +@read -strlen +get",
                hex(&sha256(b"secret"))
            )
        );
        assert_eq!(AclUser::from_rules("alice", &u.rules()), u);
        let d = AclUser::default_user(None);
        assert_eq!(d.describe(), "user default on nopass ~* &* +@all");
        assert_eq!(AclUser::from_rules("default", &d.rules()), d);
        let u = user(&["on", ">a", ">b", "<a", "reset"]);
        assert_eq!(u.describe(), "user alice off resetchannels -@all");
    }

    #[test]
    fn off_or_wrong_password_fails() {
        let u = user(&[">pw"]);
        assert!(!u.check_password(b"pw"), "off users never authenticate");
        let u = user(&["on", "nopass"]);
        assert!(u.check_password(b"anything"));
        let mut u = user(&["on"]);
        assert!(!u.check_password(b""));
        assert!(u.apply_rule(b"<nope", &any).is_err());
        assert!(u.apply_rule(b"#xyz", &any).is_err());
        assert!(u.apply_rule(b"+nosuch", &|_, _| false).is_err());
    }

    #[test]
    fn replicated_users_are_in_snapshots() {
        use crate::keyspace::{Keyspace, Limits, Outcome, WriteOp};
        use bytes::Bytes;
        let mut ks = Keyspace::new();
        let alice = user(&["on", ">secret", "~cache:*", "+@read"]);
        let set = WriteOp::AclSetUser {
            name: Bytes::from("alice"),
            rules: alice.rules().into_iter().map(Bytes::from).collect(),
        };
        assert_eq!(ks.apply(&set, 0, Limits::default()), Outcome::Ok);
        let del = WriteOp::AclDelUser {
            names: vec![Bytes::from("bob")],
        };
        assert_eq!(ks.apply(&del, 0, Limits::default()), Outcome::Ok);
        let mut buf = Vec::new();
        ks.write_snapshot(&mut buf).unwrap();
        let back = Keyspace::read_snapshot(&buf[..]).unwrap();
        let users = back.acl_users();
        assert_eq!(
            users.get("alice").cloned().flatten().as_deref(),
            Some(&alice)
        );
        assert_eq!(users.get("bob"), Some(&None));
        assert_eq!(users.len(), 2);
        // The digest covers the users: replicas that differ only in them
        // differ.
        assert_eq!(back.digest(), ks.digest());
        assert_ne!(Keyspace::new().digest(), ks.digest());
    }

    #[test]
    fn acl_file() {
        let users = parse_acl_file(
            "# comment\n\nuser alice on >secret ~cache:* +@read\nuser default on nopass ~* +@all\n",
            &any,
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert!(users[0].check_password(b"secret"));
        assert!(parse_acl_file("alice on", &any).is_err());
        assert!(parse_acl_file("user a on\nuser a off", &any).is_err());
    }
}
