//! One client connection: read, parse every complete request in the buffer,
//! execute them in order, and write all their replies with one flush.
//!
//! Every keyed or keyspace command asks the router where it goes
//! (`route_write` / `route_read`, with the slot of every key); this module
//! only keeps the replies in order. Pipelined writes do not wait for each
//! other: each is queued to the proposer (queue order is log order) and
//! its reply slot is kept in order. A read first waits for the writes
//! before it in the pipeline (so it sees them); the batch's `ReadTicket`
//! lets the router share one read barrier among all its reads.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::command::{self, table::CommandSpec, Plan};
use crate::keyspace::{KeyspaceError, Outcome};
use crate::protocol::reply::{encode, encoded_len};
use crate::protocol::{ParseError, ParserLimits, Reply, RequestParser};
use crate::router::{ReadTicket, Redirect};
pub use crate::server::clients::Session;
use crate::server::Server;

type WriteFuture = Pin<Box<dyn Future<Output = Result<Outcome, Redirect>> + Send>>;

enum Pending {
    Ready(Reply),
    /// A queued write, and when it was executed (its time in `INFO
    /// commandstats` runs until its reply is resolved).
    Write(&'static CommandSpec, Instant, Vec<Bytes>, WriteFuture),
}

/// The replies of one pipeline batch, in request order. A reply is encoded
/// into `out` as soon as every reply before it is known (writes resolve
/// later), and never past the client's output-buffer limit: a pipeline of
/// `GET big` or one huge `MGET` stops at the limit instead of building the
/// whole answer first (the values themselves are shared, not copied, until
/// they are encoded).
struct Batch {
    /// Replies not yet encoded: everything from the first unresolved write on.
    pending: Vec<Pending>,
    /// The read barriers this batch passed (the router's record).
    reads: ReadTicket,
    /// Encoded replies, in order.
    out: BytesMut,
    /// Encoded size of the ready replies held in `pending`.
    held: usize,
    /// `client-output-buffer-limit` (hard bytes; `usize::MAX` = none).
    limit: usize,
    /// The limit was reached: nothing more is encoded, the client is closed.
    overflow: bool,
}

impl Batch {
    fn new(out: BytesMut, limit: usize) -> Batch {
        Batch {
            pending: Vec::new(),
            reads: ReadTicket::default(),
            out,
            held: 0,
            limit,
            overflow: false,
        }
    }

    /// Bytes the batch may still add before the limit.
    fn room(&self) -> usize {
        self.limit.saturating_sub(self.out.len() + self.held)
    }

    fn push(&mut self, r: Reply, resp3: bool) {
        if self.overflow {
            return;
        }
        let n = encoded_len(&r, resp3);
        if n > self.room() {
            self.overflow = true;
        } else if self.pending.is_empty() {
            encode(&r, resp3, &mut self.out);
        } else {
            self.held += n;
            self.pending.push(Pending::Ready(r));
        }
    }

    /// Wait for every queued write (so a following read observes them) and
    /// encode every reply held behind them.
    async fn resolve_writes(&mut self, server: &Server, session: &Session, resp3: bool) {
        self.held = 0;
        for p in std::mem::take(&mut self.pending) {
            let reply = match p {
                Pending::Ready(r) => r,
                Pending::Write(spec, started, args, fut) => {
                    let reply = outcome_reply(spec, fut.await);
                    finished(server, session, spec, started, &reply, &args);
                    reply
                }
            };
            self.push(reply, resp3);
        }
    }
}

fn outcome_reply(spec: &CommandSpec, r: Result<Outcome, Redirect>) -> Reply {
    match r {
        Ok(o) => command::render(spec, o),
        Err(redirect) => Reply::Error(redirect.error_text()),
    }
}

/// A client's byte stream: a plain `TcpStream` (`port`) or a TLS stream
/// after its handshake (`tls-port`); both take exactly this path.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for S {}

/// Serve one client connection (`laddr`: the local address it reached).
pub async fn handle<S: ClientStream>(
    server: Arc<Server>,
    stream: S,
    peer: SocketAddr,
    laddr: SocketAddr,
) {
    let settings = &server.settings;
    if settings.protected_mode
        && !peer.ip().is_loopback()
        && crate::server::commands::acl::default_has_no_password(&server)
    {
        let mut stream = stream;
        let _ = stream.write_all(PROTECTED_MODE_DENIED.as_bytes()).await;
        return;
    }
    let authenticated = crate::server::commands::acl::default_is_open(&server);
    let Some(session) = server
        .clients
        .register(peer, laddr, settings.maxclients, authenticated)
    else {
        server.stats.rejected_connections.incr();
        let mut stream = stream;
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        let _ = stream.flush().await;
        return;
    };
    server.stats.connections.incr();
    if let Err(e) = run(&server, stream, &session).await {
        tracing::debug!(%peer, error = %e, "client connection ended");
    }
    server.clients.unregister(session.id);
}

async fn run<S: ClientStream>(
    server: &Arc<Server>,
    mut stream: S,
    session: &Session,
) -> std::io::Result<()> {
    let settings = &server.settings;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let limit = match settings.client_output_buffer_limit {
        0 => usize::MAX,
        n => n,
    };
    let mut parser = RequestParser::new(ParserLimits {
        proto_max_bulk_len: settings.proto_max_bulk_len,
        unauthenticated: !session.authenticated(),
    });
    loop {
        // Execute every complete request already buffered.
        let mut batch = Batch::new(std::mem::take(&mut out), limit);
        let mut fatal = false;
        loop {
            parser.limits.unauthenticated = !session.authenticated();
            if parser.limits.unauthenticated {
                batch.limit = limit.min(crate::protocol::request::UNAUTH_OUTPUT_LIMIT);
            } else {
                batch.limit = limit;
            }
            match parser.parse(&mut buf) {
                Ok(Some(args)) => {
                    execute(server, session, &mut batch, args).await;
                    if session.closing() || batch.overflow {
                        break;
                    }
                }
                Ok(None) => break,
                Err(ParseError::Protocol(msg)) => {
                    batch.push(
                        Reply::Error(format!("ERR Protocol error: {msg}")),
                        session.resp3(),
                    );
                    fatal = true;
                    break;
                }
                Err(ParseError::Http) => {
                    tracing::warn!(peer = %session.addr, "possible SECURITY ATTACK detected: an HTTP request was sent to the RESP port; connection closed");
                    return Ok(());
                }
            }
        }
        batch.resolve_writes(server, session, session.resp3()).await;
        if batch.overflow {
            log_output_limit_close(session);
            return Ok(());
        }
        out = batch.out;
        if !out.is_empty() {
            server.stats.net_output_bytes.add(out.len() as u64);
            let soft = settings.client_output_buffer_soft;
            match write_out(&mut stream, &out, soft, settings.idle_timeout).await? {
                WriteEnd::Done => {}
                WriteEnd::SoftLimit => {
                    log_output_limit_close(session);
                    return Ok(());
                }
                WriteEnd::Idle => {
                    tracing::debug!(peer = %session.addr, "client took no reply bytes for `timeout`; closed");
                    return Ok(());
                }
            }
            out.clear();
            if out.capacity() > 1 << 20 {
                out = BytesMut::with_capacity(16 * 1024);
            }
        }
        if fatal || session.closing() {
            let _ = stream.shutdown().await;
            return Ok(());
        }
        // What a client has sent but not yet completed: the unparsed bytes
        // plus the arguments already taken off the buffer (1 MB before AUTH).
        if buf.len() + parser.pending_bytes()
            > parser.query_buffer_limit(settings.client_query_buffer_limit)
        {
            tracing::warn!(peer = %session.addr, "client query buffer limit reached; closing");
            return Ok(());
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let n = match settings.idle_timeout {
            Some(t) => match tokio::time::timeout(t, stream.read_buf(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
            None => stream.read_buf(&mut buf).await?,
        };
        if n == 0 {
            return Ok(());
        }
        server.stats.net_input_bytes.add(n as u64);
    }
}

/// Redis's own log line (networking.c), so operators' greps work.
fn log_output_limit_close(session: &Session) {
    tracing::warn!(
        "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
        session.line()
    );
}

/// Why `write_out` gave up on a client.
enum WriteEnd {
    /// Everything was written.
    Done,
    /// More than the soft limit stayed unsent for the soft time in a row.
    SoftLimit,
    /// Not a byte was taken for `timeout` seconds: a client that stopped
    /// reading is idle too (Redis counts a write as an interaction, so a
    /// client whose replies cannot be delivered times out like one that
    /// sends nothing).
    Idle,
}

/// Write `out` to the client, giving up as `WriteEnd` says: with a soft
/// limit `(bytes, time)`, once more than `bytes` of it stayed unsent for
/// `time` in a row (a client that reads too slowly, as Redis's soft
/// `client-output-buffer-limit`); with `idle`, once no byte was taken for
/// that long.
///
/// Ends with a flush: a TLS stream may still hold encrypted records that
/// the socket did not take yet (a no-op for a plain `TcpStream`).
async fn write_out<S: ClientStream>(
    stream: &mut S,
    out: &[u8],
    soft: Option<(usize, Duration)>,
    idle: Option<Duration>,
) -> std::io::Result<WriteEnd> {
    let mut rest = out;
    let mut above_since: Option<Instant> = None;
    while !rest.is_empty() {
        // How long this write may wait for progress, and what ends it.
        let mut wait = idle.map(|t| (t, WriteEnd::Idle));
        if let Some((_, soft_time)) = soft.filter(|(b, _)| rest.len() > *b) {
            let since = *above_since.get_or_insert_with(Instant::now);
            let left = soft_time.saturating_sub(since.elapsed());
            if wait.as_ref().is_none_or(|(t, _)| left < *t) {
                wait = Some((left, WriteEnd::SoftLimit));
            }
        }
        let n = match wait {
            None => stream.write(rest).await?,
            Some((t, end)) => match tokio::time::timeout(t, stream.write(rest)).await {
                Ok(r) => r?,
                Err(_) => return Ok(end),
            },
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        rest = &rest[n..];
    }
    match idle {
        Some(t) => match tokio::time::timeout(t, stream.flush()).await {
            Ok(r) => r?,
            Err(_) => return Ok(WriteEnd::Idle),
        },
        None => stream.flush().await?,
    }
    Ok(WriteEnd::Done)
}

/// Redis's protected-mode refusal (networking.c), word for word.
const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

fn slot_of(key: &Bytes) -> u16 {
    crate::slot::key_slot(key)
}

/// A command ran and `reply` is its answer: `INFO commandstats` (call,
/// time since `started`, failed if an error), errorstats and SLOWLOG.
fn finished(
    server: &Server,
    session: &Session,
    spec: &CommandSpec,
    started: Instant,
    reply: &Reply,
    args: &[Bytes],
) {
    let took = started.elapsed();
    let failed = matches!(reply, Reply::Error(_));
    server.stats.per_command.call(spec, took, failed);
    let event = if spec.has(command::table::Flag::Fast) {
        crate::latency::FAST_COMMAND
    } else {
        crate::latency::COMMAND
    };
    crate::latency::record(event, took);
    server.stats.error_reply(reply);
    if server.slowlog.is_slow(took) && !spec.has(command::table::Flag::SkipSlowlog) {
        let name = session.names().name;
        server
            .slowlog
            .record(args, took, &session.addr.to_string(), &name);
    }
}

/// A command refused before it ran (`rejected_calls`), with its error.
fn rejected(server: &Server, spec: Option<&CommandSpec>, reply: Option<&Reply>) {
    if let Some(spec) = spec {
        server.stats.per_command.rejected(spec);
    }
    if let Some(r) = reply {
        server.stats.error_reply(r);
    }
}

/// The row a refused command line names, if any (an arity error of
/// `CLIENT LIST x` is `client|list`'s).
fn named_row(args: &[Bytes]) -> Option<&'static CommandSpec> {
    let spec = command::table::lookup(args.first()?)?;
    match args.get(1) {
        Some(sub) if spec.is_container() => spec.subcommand(sub),
        _ => Some(spec),
    }
}

async fn execute(server: &Arc<Server>, session: &Session, batch: &mut Batch, args: Vec<Bytes>) {
    server.stats.commands.incr();
    let started = Instant::now();
    // The replicated clock, not the wall clock (docs/time.md); the slot is
    // not known before parsing.
    let now = server.router.now_ms();
    let resp3 = session.resp3();
    let parsed = match command::parse(&args, now) {
        Ok(p) => p,
        Err(reply) => {
            // As in Redis, a known command with a valid arity is refused
            // for NOAUTH / NOPERM before its arguments are judged: a client
            // learns nothing about a command it may not run.
            match command::resolve(&args) {
                Ok((spec, _)) => match admit(server, session, spec, &args) {
                    // Its arguments were judged: it ran and failed.
                    Ok(()) => finished(server, session, spec, started, &reply, &args),
                    Err(refusal) => {
                        rejected(server, Some(spec), refusal.as_ref());
                        if let Some(r) = refusal {
                            batch.push(r, resp3);
                        }
                        return;
                    }
                },
                // Unknown command or subcommand, or a wrong arity.
                Err(_) => rejected(server, named_row(&args), Some(&reply)),
            }
            batch.push(reply, resp3);
            return;
        }
    };
    let spec = parsed.spec;
    session.touch(spec);
    if let Err(refusal) = admit(server, session, spec, &args) {
        rejected(server, Some(spec), refusal.as_ref());
        if let Some(r) = refusal {
            batch.push(r, resp3);
        }
        return;
    }
    // The slot of every key: the router checks they all belong to one group.
    let slots = command::keys(spec, &args).map(slot_of);
    match parsed.plan {
        Plan::Reply(r) => {
            finished(server, session, spec, started, &r, &args);
            batch.push(r, resp3);
        }
        Plan::Write(op) => match server.router.route_write(slots) {
            Ok(route) => {
                let fut = server.router.write(route, op);
                batch
                    .pending
                    .push(Pending::Write(spec, started, args, Box::pin(fut)));
            }
            Err(redirect) => push_redirect(server, batch, spec, redirect, resp3),
        },
        Plan::Read(op) => {
            batch.resolve_writes(server, session, resp3).await;
            // Its time starts after the writes before it in the pipeline.
            let started = Instant::now();
            let route = match server.router.route_read(slots, session.readonly()) {
                Ok(route) => route,
                Err(redirect) => return push_redirect(server, batch, spec, redirect, resp3),
            };
            // A key listing is built only up to what the client's output
            // limit still allows.
            let room = batch.room();
            match server
                .router
                .read(&route, &op, room, &mut batch.reads)
                .await
            {
                Ok(Outcome::Err(KeyspaceError::ReplyTooLarge)) => {
                    server
                        .stats
                        .per_command
                        .call(spec, started.elapsed(), false);
                    batch.overflow = true;
                }
                Ok(outcome) => {
                    let reply = command::render(spec, outcome);
                    finished(server, session, spec, started, &reply, &args);
                    batch.push(reply, resp3);
                }
                Err(redirect) => push_redirect(server, batch, spec, redirect, resp3),
            }
        }
        Plan::Server(cmd) => {
            batch.resolve_writes(server, session, resp3).await;
            let started = Instant::now();
            let reply = crate::server::commands::execute(server, session, cmd).await;
            finished(server, session, spec, started, &reply, &args);
            // HELLO 3 answers in the protocol it switched to.
            batch.push(reply, session.resp3());
        }
    }
}

/// Whether `session` may run this command line: authenticated (or a
/// `no_auth` command), then the ACL check (the user's commands, categories
/// and key patterns; once per command). `Err(None)`: no reply, the
/// connection closes (its user was deleted, as Redis closes them).
fn admit(
    server: &Server,
    session: &Session,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Result<(), Option<Reply>> {
    if !session.authenticated() && !command::allowed_before_auth(spec) {
        return Err(Some(Reply::error("NOAUTH Authentication required.")));
    }
    crate::server::commands::acl::check(server, session, spec, args).inspect_err(|denied| {
        if denied.is_none() {
            session.close_after_reply();
        }
    })
}

/// A redirect (MOVED, ASK, TRYAGAIN...) refuses the command, as in Redis.
fn push_redirect(server: &Server, batch: &mut Batch, spec: &CommandSpec, r: Redirect, resp3: bool) {
    if matches!(r, Redirect::Moved { .. }) {
        server.stats.redirects.incr();
    }
    let reply = Reply::Error(r.error_text());
    rejected(server, Some(spec), Some(&reply));
    batch.push(reply, resp3);
}
