//! Connected clients, for CLIENT LIST / CLIENT INFO / INFO clients and the
//! `maxclients` limit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

/// What CLIENT LIST shows about one connection.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    pub state: Mutex<ClientState>,
}

#[derive(Debug, Default, Clone)]
pub struct ClientState {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub resp: u8,
    /// The table row's name: a static string, so recording it per command
    /// costs no allocation.
    pub last_cmd: &'static str,
    pub last_active: Option<Instant>,
    pub readonly: bool,
}

#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Registry {
    /// Register a new connection unless `maxclients` are already connected.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        maxclients: usize,
    ) -> Option<Arc<ClientInfo>> {
        let mut clients = self.clients.lock();
        if clients.len() >= maxclients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            state: Mutex::new(ClientState {
                resp: 2,
                ..ClientState::default()
            }),
        });
        clients.insert(id, info.clone());
        metrics::gauge!(crate::metrics::CONNECTED_CLIENTS).set(clients.len() as f64);
        Some(info)
    }

    pub fn unregister(&self, id: u64) {
        let mut clients = self.clients.lock();
        clients.remove(&id);
        metrics::gauge!(crate::metrics::CONNECTED_CLIENTS).set(clients.len() as f64);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }
}

impl ClientInfo {
    /// One CLIENT LIST line (Redis field order, fields we track).
    pub fn line(&self) -> String {
        let st = self.state.lock();
        let idle = st.last_active.map(|t| t.elapsed().as_secs()).unwrap_or(0);
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            st.name,
            self.created.elapsed().as_secs(),
            idle,
            if st.readonly { "r" } else { "N" },
            if st.last_cmd.is_empty() { "NULL" } else { st.last_cmd },
            st.resp,
            st.lib_name,
            st.lib_ver,
        )
    }
}
