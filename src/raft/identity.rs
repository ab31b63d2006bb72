//! Who this node is and which cluster it belongs to, and the bus hello that
//! proves both to a peer before any raft RPC is exchanged.
//!
//! A raft id alone is not an identity: a node whose data dir was lost comes
//! back with the same `--node-id` but an empty log, and if the others took
//! it for the member it was, its vote could elect a leader that lacks
//! committed entries. So every data dir carries two more names:
//!
//! * `node-name` — 40 hex chars generated once per data dir (it is also the
//!   Redis Cluster node id of `CLUSTER NODES`). A wiped dir gets a new one.
//! * `cluster-id` — 40 hex chars created when a cluster is bootstrapped and
//!   adopted by every node when it is added. An empty dir has none.
//!
//! Every bus connection starts with a [`Hello`] carrying the sender's raft
//! id, node name and cluster id, and the id and name the sender has on
//! record for the receiver. The receiver ([`Identity::admit`]) refuses a
//! peer of another cluster (or of none), and — until its own log lists it
//! under its current name — a peer that knows it under another name (the
//! receiver was wiped). A node with no cluster id accepts only a peer whose
//! membership already lists it under its own, freshly generated name — that
//! is, a node is never talked to as a voter before it has been added — and
//! adopts that peer's cluster id then.
//!
//! Once a re-added node's log holds the membership entry that lists it under
//! its new name, a peer that still knows it under the old name is merely
//! behind: its log lacks that entry (and the FORGET before it), so raft's
//! up-to-date check already denies it this node's vote, and refusing it
//! would keep it from ever catching up. For the same reason a node does not
//! refuse a peer of its own cluster whose name differs from the one its
//! (possibly older) membership holds for that id: the peer was re-added in
//! a membership this node has not seen yet, and a vote request from it is
//! judged by raft's log check like any other. (The first version refused
//! both; a 5-node campaign then deadlocked after a wiped node was re-added
//! and became leader while two followers still held its old name.)

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::raft::auth::ClusterSecret;
use crate::raft::types::NodeId;

const NODE_NAME_FILE: &str = "node-name";
const CLUSTER_ID_FILE: &str = "cluster-id";
/// A peer that is refused keeps redialling (with backoff, every 0.5 s at
/// most): log its refusal once per this period, with a count.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// 40 lowercase hex chars, like Redis's run id and cluster node ids.
pub fn random_hex40() -> String {
    let mut s = String::with_capacity(40);
    for _ in 0..5 {
        s.push_str(&format!("{:016x}", rand::random::<u64>())[..8]);
    }
    s
}

/// True for a well-formed node name or cluster id.
pub fn is_hex40(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first frame of every bus connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// Sender's raft id and node name.
    pub from: NodeId,
    pub from_name: String,
    /// Sender's cluster id; `None` only for an empty data dir.
    pub cluster: Option<String>,
    /// The raft id and node name the sender has on record for the receiver.
    pub to: NodeId,
    pub to_name: String,
}

/// The first frame of a connection that carries membership requests only
/// (who-are-you, join): the sender may not know the receiver's raft id or
/// name yet, and may have no cluster id yet. Such a connection is never
/// admitted for raft RPCs, and its hello never makes an empty node adopt a
/// cluster id (`raft::service::admit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestHello {
    pub version: u32,
    pub from: NodeId,
    pub from_name: String,
    /// Sender's cluster id; `None` for an empty data dir.
    pub cluster: Option<String>,
}

/// Why a hello was refused; the text is logged by the refusing node and
/// sent back to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("bus protocol version {theirs}, this node speaks {ours}")]
    Version { ours: u32, theirs: u32 },
    #[error("peer node {from} is of another cluster ({theirs}; this node is of {ours})")]
    OtherCluster {
        from: NodeId,
        ours: String,
        theirs: String,
    },
    #[error("peer node {from} has no cluster id (empty data dir, not added to any cluster)")]
    PeerNotMember { from: NodeId },
    #[error("peer node {from} addressed node {to}, but this is node {me}")]
    WrongTarget {
        from: NodeId,
        to: NodeId,
        me: NodeId,
    },
    #[error(
        "peer node {from} knows node {me} as {theirs}, but this node is {ours}: \
         this data dir is not the one that was added (wiped?); remove the old member \
         with CLUSTER FORGET {theirs} and join again"
    )]
    NotThatMember {
        from: NodeId,
        me: NodeId,
        theirs: String,
        ours: String,
    },
}

/// What admitting a hello asks of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Accept, and first adopt (persist) the peer's cluster id.
    Adopt(String),
}

/// Decide on a hello. `listed` says whether this node's own (latest)
/// membership lists it under its current name, i.e. whether its log
/// already holds the entry that added this data dir.
fn judge(
    me: NodeId,
    my_name: &str,
    my_cluster: Option<&str>,
    hello: &Hello,
    listed: bool,
    version: u32,
) -> Result<Verdict, Refusal> {
    if hello.version != version {
        return Err(Refusal::Version {
            ours: version,
            theirs: hello.version,
        });
    }
    let from = hello.from;
    let Some(theirs) = hello.cluster.as_deref() else {
        return Err(Refusal::PeerNotMember { from });
    };
    if let Some(ours) = my_cluster {
        if ours != theirs {
            return Err(Refusal::OtherCluster {
                from,
                ours: ours.to_string(),
                theirs: theirs.to_string(),
            });
        }
    }
    if hello.to != me {
        return Err(Refusal::WrongTarget {
            from,
            to: hello.to,
            me,
        });
    }
    if hello.to_name != my_name && !listed {
        return Err(Refusal::NotThatMember {
            from,
            me,
            theirs: hello.to_name.clone(),
            ours: my_name.to_string(),
        });
    }
    Ok(match my_cluster {
        Some(_) => Verdict::Accept,
        None => Verdict::Adopt(theirs.to_string()),
    })
}

/// This node's identity: raft id, node name and (once bootstrapped or
/// added) cluster id, kept in the data dir.
#[derive(Debug)]
pub struct Identity {
    pub node_id: NodeId,
    pub name: String,
    dir: PathBuf,
    cluster: RwLock<Option<String>>,
    /// Per refused peer: when its refusal was last logged, and how many
    /// refusals were not logged since.
    refusals: Mutex<HashMap<NodeId, (Instant, u64)>>,
    /// The cluster secret every bus connection must prove (`raft::auth`);
    /// `None`: no authentication (loopback-only deployments).
    secret: Option<ClusterSecret>,
}

impl Identity {
    /// Read the identity kept in `dir`, creating the node name on first use.
    ///
    /// If the raft log (the state the identity vouches for) is gone while
    /// the names remain — a partial wipe — the names are not trusted: a new
    /// node name is generated and the cluster id dropped, so the node is
    /// treated as the empty node it is.
    pub fn load(dir: &Path, node_id: NodeId) -> io::Result<Identity> {
        std::fs::create_dir_all(dir)?;
        // LMDB's data file (heed opens `raft-log/` as a directory env).
        let log_file = dir.join(crate::raft::log_store::LOG_DIR).join("data.mdb");
        let mut name = read_hex40(&dir.join(NODE_NAME_FILE))?;
        let mut cluster = read_hex40(&dir.join(CLUSTER_ID_FILE))?;
        if name.is_some() && !log_file.exists() {
            tracing::warn!(
                dir = %dir.display(),
                "data dir has a node name but no raft log: treating it as a new, empty node"
            );
            if cluster.take().is_some() {
                std::fs::remove_file(dir.join(CLUSTER_ID_FILE))?;
            }
            name = None;
        }
        let name = match name {
            Some(n) => n,
            None => {
                let n = random_hex40();
                write_durably(dir, NODE_NAME_FILE, &n)?;
                n
            }
        };
        Ok(Identity {
            node_id,
            name,
            dir: dir.to_path_buf(),
            cluster: RwLock::new(cluster),
            refusals: Mutex::default(),
            secret: None,
        })
    }

    /// This identity, proving `secret` on every bus connection.
    pub fn with_secret(mut self, secret: Option<ClusterSecret>) -> Identity {
        self.secret = secret;
        self
    }

    /// The cluster secret, if one is configured.
    pub fn secret(&self) -> Option<&ClusterSecret> {
        self.secret.as_ref()
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster.read().clone()
    }

    /// Create this node's cluster id for a bootstrap (or keep the one a
    /// bootstrap interrupted before it initialized raft left behind).
    pub fn create_cluster(&self) -> io::Result<String> {
        self.set_cluster(None)
    }

    /// Persist `id` as this node's cluster, unless it already has one (the
    /// one it has wins; `judge` refused any other before this).
    fn set_cluster(&self, id: Option<&str>) -> io::Result<String> {
        let mut cluster = self.cluster.write();
        if let Some(c) = cluster.as_ref() {
            return Ok(c.clone());
        }
        let id = id.map_or_else(random_hex40, str::to_string);
        write_durably(&self.dir, CLUSTER_ID_FILE, &id)?;
        *cluster = Some(id.clone());
        Ok(id)
    }

    /// Whether to log a refusal of `peer` now: `Some(n)` with the number of
    /// refusals of it not logged since the last message, or `None` to stay
    /// quiet (at most one message per peer per `REFUSAL_LOG_PERIOD`).
    pub fn log_refusal(&self, peer: NodeId) -> Option<u64> {
        let now = Instant::now();
        let mut refusals = self.refusals.lock();
        match refusals.get_mut(&peer) {
            Some((at, quiet)) if now.duration_since(*at) < REFUSAL_LOG_PERIOD => {
                *quiet += 1;
                None
            }
            Some((at, quiet)) => {
                *at = now;
                Some(std::mem::take(quiet))
            }
            None => {
                refusals.insert(peer, (now, 0));
                Some(0)
            }
        }
    }

    /// The hello this node sends to peer `to`, which its membership lists
    /// under `to_name`.
    pub fn hello(&self, version: u32, to: NodeId, to_name: &str) -> Hello {
        Hello {
            version,
            from: self.node_id,
            from_name: self.name.clone(),
            cluster: self.cluster_id(),
            to,
            to_name: to_name.to_string(),
        }
    }

    /// The guest hello this node sends before a membership request.
    pub fn guest_hello(&self, version: u32) -> GuestHello {
        GuestHello {
            version,
            from: self.node_id,
            from_name: self.name.clone(),
            cluster: self.cluster_id(),
        }
    }

    /// Admit or refuse a guest hello: only the bus version is checked (a
    /// guest may ask who this node is and ask to join; each request judges
    /// the guest's cluster itself). Nothing is adopted.
    pub fn admit_guest(&self, hello: &GuestHello, version: u32) -> Result<(), AdmitError> {
        if hello.version != version {
            return Err(AdmitError::Refused(Refusal::Version {
                ours: version,
                theirs: hello.version,
            }));
        }
        Ok(())
    }

    /// Admit or refuse a peer's hello (see the module doc). Adopting a
    /// cluster id is persisted before this returns, so it happens before
    /// any RPC of that peer is served.
    pub fn admit(&self, hello: &Hello, listed: bool, version: u32) -> Result<(), AdmitError> {
        let verdict = {
            let cluster = self.cluster.read();
            judge(
                self.node_id,
                &self.name,
                cluster.as_deref(),
                hello,
                listed,
                version,
            )?
        };
        if let Verdict::Adopt(id) = verdict {
            let kept = self.set_cluster(Some(&id))?;
            if kept != id {
                // Another peer's hello adopted a different cluster meanwhile.
                return Err(AdmitError::Refused(Refusal::OtherCluster {
                    from: hello.from,
                    ours: kept,
                    theirs: id,
                }));
            }
            tracing::info!(cluster = %id, via = hello.from, "added to a cluster: adopted its cluster id");
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("cannot store the cluster id: {0}")]
    Io(#[from] io::Error),
}

fn read_hex40(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) if is_hex40(s.trim()) => Ok(Some(s.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `dir/file` so that after a crash it holds either nothing or
/// `content`: temp file, fsync, rename, fsync dir.
fn write_durably(dir: &Path, file: &str, content: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, content)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(file))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: u32 = 2;

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    fn hello(cluster: Option<&str>, to_name: &str) -> Hello {
        Hello {
            version: V,
            from: 2,
            from_name: hex('b'),
            cluster: cluster.map(str::to_string),
            to: 1,
            to_name: to_name.to_string(),
        }
    }

    fn judge1(my_cluster: Option<&str>, h: &Hello, listed: bool) -> Result<Verdict, Refusal> {
        judge(1, &hex('a'), my_cluster, h, listed, V)
    }

    #[test]
    fn member_of_the_same_cluster_is_accepted() {
        let c = hex('c');
        let h = hello(Some(&c), &hex('a'));
        assert_eq!(judge1(Some(&c), &h, false), Ok(Verdict::Accept));
        // A peer this node does not know yet (a membership change it has
        // not applied) is judged by cluster and target alone.
        assert_eq!(judge1(Some(&c), &h, false), Ok(Verdict::Accept));
    }

    #[test]
    fn other_cluster_is_refused() {
        let h = hello(Some(&hex('d')), &hex('a'));
        assert!(matches!(
            judge1(Some(&hex('c')), &h, false),
            Err(Refusal::OtherCluster { .. })
        ));
    }

    #[test]
    fn peer_without_cluster_is_refused() {
        let h = hello(None, &hex('a'));
        assert_eq!(
            judge1(Some(&hex('c')), &h, false),
            Err(Refusal::PeerNotMember { from: 2 })
        );
        assert_eq!(
            judge1(None, &h, false),
            Err(Refusal::PeerNotMember { from: 2 })
        );
    }

    #[test]
    fn wiped_node_refuses_whoever_knew_it_under_its_old_name() {
        // The peer's membership lists node 1 as 'e…' (the old data dir); this
        // node, empty, is 'a…': no vote, no append, no adoption.
        let h = hello(Some(&hex('c')), &hex('e'));
        assert!(matches!(
            judge1(None, &h, false),
            Err(Refusal::NotThatMember { .. })
        ));
        assert!(matches!(
            judge1(Some(&hex('c')), &h, false),
            Err(Refusal::NotThatMember { .. })
        ));
    }

    #[test]
    fn empty_node_adopts_the_cluster_that_added_it() {
        let h = hello(Some(&hex('c')), &hex('a'));
        assert_eq!(judge1(None, &h, false), Ok(Verdict::Adopt(hex('c'))));
    }

    #[test]
    fn readded_node_accepts_peers_still_holding_its_old_name() {
        // Node 1 was wiped, re-added as 'a…' and its log lists it so: a peer
        // whose membership still says 'e…' is behind, not a danger (raft's
        // log check denies it this node's vote); refusing it would keep it
        // from ever catching up.
        let h = hello(Some(&hex('c')), &hex('e'));
        assert_eq!(judge1(Some(&hex('c')), &h, true), Ok(Verdict::Accept));
    }

    #[test]
    fn wrong_target_and_version_are_refused() {
        let c = hex('c');
        let mut h = hello(Some(&c), &hex('a'));
        h.to = 3;
        assert!(matches!(
            judge1(Some(&c), &h, false),
            Err(Refusal::WrongTarget { .. })
        ));
        h.to = 1;
        h.version = V + 1;
        assert!(matches!(
            judge1(Some(&c), &h, false),
            Err(Refusal::Version { .. })
        ));
    }

    #[test]
    fn guest_hello_is_judged_by_version_and_adopts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load(dir.path(), 1).unwrap();
        let mut g = GuestHello {
            version: V,
            from: 2,
            from_name: hex('b'),
            cluster: Some(hex('c')),
        };
        id.admit_guest(&g, V).unwrap();
        assert_eq!(id.cluster_id(), None, "a guest's cluster id is not adopted");
        g.version = V + 1;
        assert!(matches!(
            id.admit_guest(&g, V),
            Err(AdmitError::Refused(Refusal::Version { .. }))
        ));
    }

    #[test]
    fn refusals_are_logged_once_per_period_per_peer() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load(dir.path(), 1).unwrap();
        assert_eq!(id.log_refusal(2), Some(0));
        assert_eq!(id.log_refusal(2), None);
        assert_eq!(id.log_refusal(2), None);
        assert_eq!(id.log_refusal(3), Some(0));
        id.refusals.lock().get_mut(&2).unwrap().0 -= REFUSAL_LOG_PERIOD;
        assert_eq!(id.log_refusal(2), Some(2));
    }

    #[test]
    fn identity_is_kept_adopted_once_and_dropped_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load(dir.path(), 1).unwrap();
        assert!(is_hex40(&id.name));
        assert_eq!(id.cluster_id(), None);
        let log_dir = dir.path().join(crate::raft::log_store::LOG_DIR);
        std::fs::create_dir_all(&log_dir).unwrap();
        std::fs::write(log_dir.join("data.mdb"), b"").unwrap();
        let h = Hello {
            version: V,
            from: 2,
            from_name: hex('b'),
            cluster: Some(hex('c')),
            to: 1,
            to_name: id.name.clone(),
        };
        id.admit(&h, false, V).unwrap();
        assert_eq!(id.cluster_id(), Some(hex('c')));
        // Reloaded: same name, same cluster.
        let again = Identity::load(dir.path(), 1).unwrap();
        assert_eq!(
            (again.name.clone(), again.cluster_id()),
            (id.name.clone(), Some(hex('c')))
        );
        // Raft log gone: a new node.
        std::fs::remove_file(log_dir.join("data.mdb")).unwrap();
        let wiped = Identity::load(dir.path(), 1).unwrap();
        assert_ne!(wiped.name, id.name);
        assert_eq!(wiped.cluster_id(), None);
    }
}
