//! Commands: ONE table (`table.rs`) drives lookup, arity, key positions,
//! flags and the COMMAND replies; each family file parses its commands'
//! arguments into a typed `Plan`. (interface fixed; being written)

use bytes::Bytes;

use crate::keyspace::{Outcome, ReadOp, WriteOp};
use crate::protocol::Reply;

/// What the server must do to answer a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Already answered (errors, PING, ECHO, COMMAND ..., CLUSTER KEYSLOT ...).
    Reply(Reply),
    /// Evaluate against the keyspace after the read barrier.
    Read(ReadOp),
    /// Propose through raft; relative TTLs are already absolute.
    Write(WriteOp),
    /// Needs session or node state (HELLO, SELECT, CLIENT, INFO, CONFIG,
    /// CLUSTER topology, READONLY, ...): executed by the server layer.
    Server(ServerCmd),
}

/// Commands the server layer executes; arguments already validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerCmd {
    /// Placeholder until the family is written.
    Todo(Vec<Bytes>),
}

/// A parsed command: its table row and what to do.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub spec: &'static table::CommandSpec,
    pub plan: Plan,
}

pub mod table {
    //! The command table.
    #[derive(Debug)]
    pub struct CommandSpec {
        pub name: &'static str,
    }
}

/// Look up, check arity and parse `args` (args[0] is the command name).
/// `now_ms` turns relative TTLs into absolute deadlines. `Err` is the reply
/// to send (unknown command, arity, syntax, integer errors...).
pub fn parse(args: &[Bytes], now_ms: u64) -> Result<Parsed, Reply> {
    let _ = (args, now_ms);
    todo!()
}

/// Render a keyspace outcome as this command's reply.
pub fn render(spec: &table::CommandSpec, outcome: Outcome) -> Reply {
    let _ = (spec, outcome);
    todo!()
}

/// The slot-determining key of a command (its first key), from the table's
/// key positions; `None` for keyless commands.
pub fn first_key<'a>(spec: &table::CommandSpec, args: &'a [Bytes]) -> Option<&'a Bytes> {
    let _ = (spec, args);
    todo!()
}

/// Commands a client may send before authenticating (table flag `no_auth`).
pub fn allowed_before_auth(spec: &table::CommandSpec) -> bool {
    let _ = spec;
    todo!()
}
