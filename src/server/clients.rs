//! Connected clients: one `Session` per connection, the only record of its
//! state. The connection and the commands change it; the registry holds
//! the same `Arc` for CLIENT LIST / CLIENT INFO / INFO clients and the
//! `maxclients` limit.
//!
//! The facts the hot path touches (protocol, READONLY, authentication,
//! last command and activity) are atomics written only by the owning
//! connection, so executing a command takes no lock; the names set by
//! CLIENT SETNAME / SETINFO / HELLO sit behind a mutex taken only by those
//! commands and by CLIENT LIST.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::command::table::{CommandSpec, COMMANDS};

/// One client connection's state.
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    /// RESP version, 2 or 3.
    resp: AtomicU8,
    /// READONLY was sent (Redis Cluster replica reads).
    readonly: AtomicBool,
    authenticated: AtomicBool,
    /// The ACL user this connection runs as (`default` until AUTH).
    user: Mutex<Arc<str>>,
    /// Set by QUIT: close after this batch's replies are written.
    closing: AtomicBool,
    /// The last command's table row (null before the first). Only compared
    /// by address, never dereferenced.
    last_cmd: AtomicPtr<CommandSpec>,
    /// Milliseconds from `created` to the last command.
    last_active_ms: AtomicU64,
    names: Mutex<Names>,
}

/// What CLIENT SETNAME / CLIENT SETINFO set.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
}

impl Session {
    fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, authenticated: bool) -> Session {
        Session {
            id,
            addr,
            laddr,
            created: Instant::now(),
            resp: AtomicU8::new(2),
            readonly: AtomicBool::new(false),
            authenticated: AtomicBool::new(authenticated),
            user: Mutex::new(Arc::from("default")),
            closing: AtomicBool::new(false),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            last_active_ms: AtomicU64::new(0),
            names: Mutex::new(Names::default()),
        }
    }

    pub fn resp(&self) -> u8 {
        self.resp.load(Ordering::Relaxed)
    }

    pub fn resp3(&self) -> bool {
        self.resp() == 3
    }

    pub fn set_resp(&self, v: u8) {
        self.resp.store(v, Ordering::Relaxed);
    }

    pub fn readonly(&self) -> bool {
        self.readonly.load(Ordering::Relaxed)
    }

    pub fn set_readonly(&self, on: bool) {
        self.readonly.store(on, Ordering::Relaxed);
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }

    pub fn set_authenticated(&self, on: bool) {
        self.authenticated.store(on, Ordering::Relaxed);
    }

    /// The ACL user's name.
    pub fn user(&self) -> Arc<str> {
        self.user.lock().clone()
    }

    pub fn set_user(&self, name: &str) {
        *self.user.lock() = Arc::from(name);
    }

    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// QUIT: close once this batch's replies are written.
    pub fn close_after_reply(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Record a command about to run (CLIENT LIST's `cmd` and `idle`).
    pub fn touch(&self, spec: &'static CommandSpec) {
        let ptr = spec as *const CommandSpec as *mut CommandSpec;
        self.last_cmd.store(ptr, Ordering::Relaxed);
        let ms = self.created.elapsed().as_millis();
        self.last_active_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The last command's name (`client|list` for a subcommand).
    pub fn last_cmd(&self) -> Option<&'static str> {
        let ptr = self.last_cmd.load(Ordering::Relaxed) as *const CommandSpec;
        if ptr.is_null() {
            return None;
        }
        COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands))
            .find(|c| std::ptr::eq(*c, ptr))
            .map(|c| c.name)
    }

    pub fn names(&self) -> Names {
        self.names.lock().clone()
    }

    pub fn update_names(&self, f: impl FnOnce(&mut Names)) {
        f(&mut self.names.lock());
    }

    /// RESET: back to a fresh connection's state.
    pub fn reset(&self, authenticated: bool) {
        self.set_resp(2);
        self.set_readonly(false);
        self.set_authenticated(authenticated);
        self.set_user("default");
        self.names.lock().name.clear();
    }

    /// One CLIENT LIST line (Redis field order, fields we track).
    pub fn line(&self) -> String {
        let names = self.names();
        let age = self.created.elapsed();
        let idle = match self.last_cmd() {
            None => 0,
            Some(_) => {
                age.as_millis()
                    .saturating_sub(u128::from(self.last_active_ms.load(Ordering::Relaxed)))
                    / 1000
            }
        };
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            names.name,
            age.as_secs(),
            idle,
            if self.readonly() { "r" } else { "N" },
            self.last_cmd().unwrap_or("NULL"),
            self.user(),
            self.resp(),
            names.lib_name,
            names.lib_ver,
        )
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<Session>>>,
}

impl Registry {
    /// Register a new connection unless `maxclients` are already connected.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        maxclients: usize,
        authenticated: bool,
    ) -> Option<Arc<Session>> {
        let mut clients = self.clients.lock();
        if clients.len() >= maxclients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let session = Arc::new(Session::new(id, addr, laddr, authenticated));
        clients.insert(id, session.clone());
        Some(session)
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.clients.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_what_client_list_shows() {
        let reg = Registry::default();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let s = reg.register(a, a, 10, true).unwrap();
        assert!(s.line().contains(" cmd=NULL "), "{}", s.line());
        assert!(s.line().contains(" resp=2 "));
        s.set_resp(3);
        s.set_readonly(true);
        s.update_names(|n| n.name = "worker".into());
        let get = crate::command::table::lookup(b"get").unwrap();
        s.touch(get);
        let list = crate::command::table::lookup(b"client")
            .unwrap()
            .subcommand(b"list")
            .unwrap();
        let line = reg.all()[0].line();
        assert!(line.contains(" name=worker "), "{line}");
        assert!(line.contains(" flags=r "), "{line}");
        assert!(line.contains(" cmd=get "), "{line}");
        assert!(line.contains(" resp=3 "), "{line}");
        s.touch(list);
        assert_eq!(s.last_cmd(), Some("client|list"));
        s.reset(false);
        let line = s.line();
        assert!(
            line.contains(" name= ") && line.contains(" flags=N ") && line.contains(" resp=2 "),
            "{line}"
        );
        assert!(!s.authenticated());
        assert_eq!(reg.len(), 1);
        reg.unregister(s.id);
        assert!(reg.is_empty());
    }
}
