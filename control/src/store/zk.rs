//! ZooKeeper as a [`Store`], through the `zookeeper-client` crate (see docs/STORES.md
//! for the comparison of clients). Keys map onto znodes one to one: the key
//! `vxdp/vni/42/mac/02:00:00:00:00:01` is the znode `/vxdp/vni/42/mac/02:00:00:00:00:01`,
//! its value the znode's data.
//!
//! - **Runtime:** the client is runtime-agnostic (`asyncs`/`spawns`); its one session
//!   task per connection runs on a thread of its own (`zk-session`), driven by
//!   `async-io`, and every call of this store blocks its caller's thread (the watcher's
//!   or the advertiser's) on `async_io::block_on` with a timeout. Nothing runs on a
//!   data-plane worker, and there is no shared runtime.
//! - **Leases:** a lease is a ZooKeeper session: [`Store::lease_grant`] opens a session
//!   whose timeout is the TTL, keys written under it are *ephemeral* znodes, which the
//!   ensemble deletes when the session expires or is closed. The client library pings
//!   the session by itself; [`Store::lease_renew`] checks the session is still alive.
//! - **Parents:** the znodes above a key (`/vxdp`, `/vxdp/vni/42/mac`, ...) are created
//!   as *container* znodes on demand (ZooKeeper deletes a container once its last child
//!   is gone); only znodes two levels below a VNI's prefix (`<kind>/<id>`) are keys.
//! - **Watching:** a child watch on the VNI's znode and on each kind under it (`vtep`,
//!   `mac`), a data watch on every key. Each watch is re-armed by the read that handles
//!   it (ZooKeeper's one-shot watches: read-and-watch is atomic, so nothing is missed
//!   between the event and the re-arm), and the read decides what happened (a data
//!   watch whose read finds no node is a delete). A VNI znode that does not exist yet
//!   is watched for its creation.
//! - **Sessions and failover:** the client is given every listed server and moves its
//!   session to the next one when its server dies (the session, its ephemeral znodes
//!   and its watches survive); which server it moved to is read from the client's
//!   `tracing` event (a subscriber scoped to the client's threads) and logged once. A
//!   session that expires (a partition longer than its timeout) ends this client: the
//!   next call opens a new session, and the next poll answers a full listing (a
//!   resync); the advertiser, told its lease is lost, re-creates its ephemeral entries
//!   under the new one.
//! - **Versions:** a key's version is the znode's data version; a delete of one
//!   version is ZooKeeper's conditional delete.

use super::{Event, Held, Lease, Poll, Store, StoreError, Update};
use futures::future::{join_all, BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError, EventType, OneshotWatcher, SessionState, Stat};

/// How long one request may take before the store counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a watch notification may trail a write it reports (the watcher's session
/// may sit on a follower a little behind the leader); a margin.
const WATCH_LAG: Duration = Duration::from_millis(500);

/// A poll with nothing to report answers after this long anyway (an empty update), so
/// the advertiser hears which of its keys are there at least this often.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Writes [`ZkStore::put_batch`] keeps in flight.
pub const BATCH: usize = 500;

/// `ephemeral_owner` of a container znode (ZooKeeper's `EphemeralType.CONTAINER`).
const CONTAINER_OWNER: i64 = i64::MIN;

/// Where and how to reach ZooKeeper.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// `host:port` of every server of the ensemble.
    pub endpoints: Vec<String>,
    /// The session timeout of a client that holds no lease (the watcher's).
    pub session_timeout: Duration,
}

impl ZkConfig {
    pub fn new(endpoints: &[&str]) -> ZkConfig {
        ZkConfig {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs each task the client spawns (its session loop) on a thread of its own.
struct ThreadSpawner;

impl spawns_core::Spawn for ThreadSpawner {
    fn spawn(&self, task: spawns_core::Task) {
        // The session loop reports to the store that spawned it (see [`Capture`]).
        let seen = SEEN.with(|s| s.borrow().clone());
        let run = move || {
            SEEN.with(|s| *s.borrow_mut() = seen);
            block(Box::into_pin(task.future));
        };
        if let Err(e) = std::thread::Builder::new().name("zk-session".into()).spawn(run) {
            log::error!("zk: cannot start the session thread: {e}");
        }
    }
}

/// Runs `f` to completion on this thread, with the client's `tracing` events going to
/// this thread's store ([`Capture`]).
fn block<F: Future>(f: F) -> F::Output {
    let _scope = spawns_core::enter(&ThreadSpawner);
    let _capture = SEEN.with(|s| s.borrow().clone()).map(|seen| tracing::subscriber::set_default(Capture(seen)));
    async_io::block_on(f)
}

/// Which server a store's session is on, as its client says.
#[derive(Debug, Default)]
struct Seen {
    session: String,
    endpoint: Option<String>,
}

type SeenCell = std::sync::Arc<std::sync::Mutex<Seen>>;

thread_local! {
    /// The store whose client runs on this thread (set around a connect, and for
    /// good on a session thread).
    static SEEN: std::cell::RefCell<Option<SeenCell>> = const { std::cell::RefCell::new(None) };
}

/// A `tracing` subscriber, scoped to the client's threads, that turns the one event
/// naming the server a session (re-)established on into the store's state, and a move
/// to another server into one log line (`zk: session S failed over to HOST:PORT`).
/// The client's other events are dropped: vxdp logs the state changes itself.
struct Capture(SeenCell);

const ESTABLISHED: &str = "succeeds to establish session to ";

impl tracing::Subscriber for Capture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        m.is_event() && *m.level() == tracing::Level::INFO && m.target().starts_with("zookeeper_client")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut m = Message(String::new());
        e.record(&mut m);
        let Some(at) = m.0.strip_prefix(ESTABLISHED) else { return };
        let at = at.trim_start_matches("tcp://").to_string();
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.endpoint.as_ref().is_some_and(|prev| *prev != at) && !seen.session.is_empty() {
            log::warn!("zk: session {} failed over to {at}", seen.session);
        }
        seen.endpoint = Some(at);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `f`, or [`StoreError::Unreachable`] after `d`.
async fn timed<T>(d: Duration, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    futures_lite_or(f, async move {
        async_io::Timer::after(d).await;
        Err(StoreError::Unreachable(format!("no answer within {d:?}")))
    })
    .await
}

/// The first of two futures to finish.
async fn futures_lite_or<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let (a, b) = (std::pin::pin!(a), std::pin::pin!(b));
    match futures::future::select(a, b).await {
        futures::future::Either::Left((v, _)) | futures::future::Either::Right((v, _)) => v,
    }
}

fn error(e: ZkError) -> StoreError {
    match e {
        ZkError::SessionExpired | ZkError::ClientClosed => StoreError::SessionLost(e.to_string()),
        ZkError::ConnectionLoss | ZkError::Timeout | ZkError::NoHosts => StoreError::Unreachable(e.to_string()),
        e => StoreError::Refused(e.to_string()),
    }
}

/// The znode of a key, and back.
fn path(key: &str) -> String {
    format!("/{}", key.trim_start_matches('/'))
}

fn key(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

fn session_lease(c: &Client) -> Lease {
    Lease(format!("{:x}", c.session_id().0))
}

/// What a watch was set on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The VNI's znode: its children (the kinds), or its creation when absent.
    Root,
    /// A kind under it (`mac`, `vtep`): its children (the keys).
    Dir(String),
    /// One key: its data and deletion.
    Key(String, String),
}

type Fired = (Target, zookeeper_client::WatchedEvent);

/// The watched tree under one VNI's prefix.
struct Tree {
    prefix: String,
    root: String,
    /// Each kind and the ids under it.
    dirs: BTreeMap<String, BTreeSet<String>>,
    watches: FuturesUnordered<BoxFuture<'static, Fired>>,
}

impl Tree {
    fn arm(&mut self, target: Target, w: OneshotWatcher) {
        self.watches.push(async move { (target, w.changed().await) }.boxed());
    }

    fn key_path(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.root)
    }
}

/// A ZooKeeper client (one session) and, for the watcher, the tree it watches.
pub struct ZkStore {
    cfg: ZkConfig,
    client: Option<Client>,
    /// The session timeout new sessions ask for (the lease TTL once one was granted).
    timeout: Duration,
    /// Sessions are leases (the advertiser's): dropping the client leaves the session
    /// to expire after its timeout, as when the node dies; a revoke closes it.
    detached: bool,
    /// The last session state logged.
    state: SessionState,
    tree: Option<Tree>,
    /// The current session, for [`ZkStore::session_cell`].
    shared: SessionCell,
    /// The server the session is on, as the client reports it.
    seen: SeenCell,
}

/// The session a [`ZkStore`] holds now, readable from another thread (tests end it
/// with [`ZkStore::end_session`] to see the store recover).
pub type SessionCell = std::sync::Arc<std::sync::Mutex<Option<zookeeper_client::SessionInfo>>>;

impl ZkStore {
    pub fn new(cfg: ZkConfig) -> Result<ZkStore, StoreError> {
        if cfg.endpoints.is_empty() {
            return Err(StoreError::Refused("no ZooKeeper servers".into()));
        }
        let timeout = cfg.session_timeout;
        Ok(ZkStore {
            cfg,
            client: None,
            timeout,
            detached: false,
            state: SessionState::Disconnected,
            tree: None,
            shared: SessionCell::default(),
            seen: SeenCell::default(),
        })
    }

    /// The session this store holds, updated whenever it opens a new one.
    pub fn session_cell(&self) -> SessionCell {
        self.shared.clone()
    }

    /// Ends `session` from a second connection, as the ensemble does when it expires
    /// a session (tests): its owner's next request fails with "session expired" and its
    /// ephemeral znodes are deleted.
    pub fn end_session(cfg: &ZkConfig, session: zookeeper_client::SessionInfo) -> Result<(), StoreError> {
        let cluster = cfg.endpoints.join(",");
        let c = block(timed(REQUEST_TIMEOUT * 2, async {
            Client::connector().with_session(session).connect(&cluster).await.map_err(error)
        }))?;
        drop(c); // the last handle of the session: closes it
        Ok(())
    }

    /// The server this store's session is on (`host:port`), as its client reported it.
    pub fn server(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).endpoint.clone()
    }

    /// Keys under `prefix` and their values (tests, tools).
    pub fn list(&mut self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self.poll(prefix, true, Duration::ZERO)?.update {
            Update::Full(pairs) => Ok(pairs),
            Update::Events(_) => Err(StoreError::Decode("a resync answered events".into())),
        }
    }

    /// Writes many keys (tests, tools): one request each, [`BATCH`] in flight at once.
    pub fn put_batch(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let c = self.client()?;
        for chunk in pairs.chunks(BATCH) {
            let puts = chunk.iter().map(|(k, v)| async move { put_plain(c, &path(k), v).await });
            block(timed(REQUEST_TIMEOUT * 10, async {
                join_all(puts).await.into_iter().try_for_each(|r| r.map(|_| ()).map_err(error))
            }))?;
        }
        Ok(())
    }

    fn connection_string(&self) -> String {
        self.cfg.endpoints.join(",")
    }

    /// The client, opening a session if there is none or the last one ended. `Some`
    /// with the reason when a session ended since the last call.
    fn connect(&mut self) -> Result<Option<String>, StoreError> {
        let mut ended = None;
        if let Some(c) = &self.client {
            let st = c.state();
            if !st.is_terminated() {
                if st != self.state {
                    match st {
                        SessionState::Disconnected => log::warn!(
                            "zk: lost the connection of session {}; failing over among {}",
                            c.session_id(),
                            self.connection_string()
                        ),
                        _ => log::info!("zk: session {} connected again ({st:?})", c.session_id()),
                    }
                    self.state = st;
                }
                return Ok(None);
            }
            log::warn!("zk: session {} ended ({st:?}); opening a new one", c.session_id());
            ended = Some(format!("session {} ended ({st:?}); new session, full resync", c.session_id()));
            self.client = None;
            self.tree = None;
        }
        let cluster = self.connection_string();
        let mut connector = Client::connector()
            .with_session_timeout(self.timeout)
            .with_connection_timeout(Duration::from_secs(2))
            .with_fail_eagerly();
        if self.detached {
            connector = connector.with_detached();
        }
        let limit = self.timeout.max(REQUEST_TIMEOUT) + Duration::from_secs(2);
        // A new cell per session: the previous session's thread may still report.
        self.seen = SeenCell::default();
        SEEN.with(|s| *s.borrow_mut() = Some(self.seen.clone()));
        let c = block(timed(limit, async { connector.connect(&cluster).await.map_err(error) }));
        SEEN.with(|s| *s.borrow_mut() = None);
        let c = c?;
        let at = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.session = c.session_id().to_string();
            seen.endpoint.clone().unwrap_or_else(|| cluster.clone())
        };
        log::info!("zk: session {} established with {at} (timeout {:?})", c.session_id(), c.session_timeout());
        self.state = SessionState::SyncConnected;
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.session().clone());
        self.client = Some(c);
        Ok(ended)
    }

    fn client(&mut self) -> Result<&Client, StoreError> {
        self.connect()?;
        Ok(self.client.as_ref().expect("connected"))
    }

    /// Checks `lease` is this client's live session.
    fn leased(&mut self, lease: &Lease) -> Result<&Client, StoreError> {
        let c = self.client()?;
        if session_lease(c) != *lease {
            return Err(StoreError::SessionLost(format!("session {} is not this client's", lease.0)));
        }
        Ok(c)
    }
}

/// Creates `path` with `data` in `mode`, creating missing parents as containers.
async fn create(c: &Client, path: &str, data: &[u8], mode: CreateMode) -> Result<(), ZkError> {
    let opts = mode.with_acls(Acls::anyone_all());
    for _ in 0..5 {
        match c.create(path, data, &opts).await {
            Err(ZkError::NoNode) => {
                let parents = ancestors(path);
                for p in parents {
                    match c.create(&p, &[], &CreateMode::Container.with_acls(Acls::anyone_all())).await {
                        Ok(_) | Err(ZkError::NodeExists) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            r => return r.map(|_| ()),
        }
    }
    Err(ZkError::NoNode)
}

/// `/a/b/c` → `/a`, `/a/b`.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = path[at + 1..].find('/') {
        at += 1 + i;
        out.push(path[..at].to_string());
    }
    out
}

async fn put_leased(c: &Client, path: &str, value: &[u8]) -> Result<bool, ZkError> {
    let me = c.session_id().0;
    for _ in 0..3 {
        match create(c, path, value, CreateMode::Ephemeral).await {
            Ok(()) => return Ok(true),
            Err(ZkError::NodeExists) => {}
            Err(e) => return Err(e),
        }
        match c.get_data(path).await {
            Ok((_, stat)) if stat.ephemeral_owner == me => match c.set_data(path, value, Some(stat.version)).await {
                Ok(_) => return Ok(true),
                Err(ZkError::BadVersion | ZkError::NoNode) => continue,
                Err(e) => return Err(e),
            },
            Ok(_) => return Ok(false),
            Err(ZkError::NoNode) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

async fn put_plain(c: &Client, path: &str, value: &[u8]) -> Result<bool, ZkError> {
    for _ in 0..3 {
        match create(c, path, value, CreateMode::Persistent).await {
            Ok(()) => return Ok(true),
            Err(ZkError::NodeExists) => match c.set_data(path, value, None).await {
                Ok(_) => return Ok(true),
                Err(ZkError::NoNode) => continue,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// A key's data with a data watch, or `None` (no such znode; no watch left).
async fn read_key(c: &Client, path: &str) -> Result<Option<(Vec<u8>, Stat, OneshotWatcher)>, ZkError> {
    match c.get_and_watch_data(path).await {
        Ok(r) => Ok(Some(r)),
        Err(ZkError::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a znode is a key (not a container made for its children).
fn is_key(stat: &Stat) -> bool {
    stat.ephemeral_owner != CONTAINER_OWNER
}

/// Lists a kind's znode with a child watch and every key under it with a data watch.
/// `Ok(false)`: the kind's znode is gone (its keys are reported deleted).
async fn list_dir(c: &Client, tree: &mut Tree, kind: &str, out: &mut Vec<Event>) -> Result<bool, ZkError> {
    let dir = format!("{}/{kind}", tree.root);
    let (ids, _, w) = match c.get_and_watch_children(&dir).await {
        Ok(r) => r,
        Err(ZkError::NoNode) => {
            forget_dir(tree, kind, out);
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    tree.arm(Target::Dir(kind.to_string()), w);
    let known = tree.dirs.entry(kind.to_string()).or_default().clone();
    let now: BTreeSet<String> = ids.into_iter().collect();
    for gone in known.difference(&now) {
        out.push(Event::Delete(key(&tree.key_path(kind, gone))));
        tree.dirs.get_mut(kind).expect("entry").remove(gone);
    }
    let new: Vec<String> = now.difference(&known).cloned().collect();
    let paths: Vec<String> = new.iter().map(|id| tree.key_path(kind, id)).collect();
    let reads = join_all(paths.iter().map(|p| read_key(c, p))).await;
    for ((id, p), r) in new.into_iter().zip(paths).zip(reads) {
        if let Some((data, stat, w)) = r? {
            tree.arm(Target::Key(kind.to_string(), id.clone()), w);
            tree.dirs.get_mut(kind).expect("entry").insert(id);
            if is_key(&stat) {
                out.push(Event::Put(key(&p), data));
            }
        }
    }
    Ok(true)
}

fn forget_dir(tree: &mut Tree, kind: &str, out: &mut Vec<Event>) {
    if let Some(ids) = tree.dirs.remove(kind) {
        for id in ids {
            out.push(Event::Delete(key(&tree.key_path(kind, &id))));
        }
    }
}

/// Re-reads the VNI's znode's children (with a watch), or watches for its creation.
async fn list_root(c: &Client, tree: &mut Tree, out: &mut Vec<Event>) -> Result<(), ZkError> {
    loop {
        match c.get_and_watch_children(&tree.root).await {
            Ok((kinds, _, w)) => {
                tree.arm(Target::Root, w);
                let now: BTreeSet<String> = kinds.into_iter().collect();
                let known: Vec<String> = tree.dirs.keys().cloned().collect();
                for k in known.iter().filter(|k| !now.contains(*k)) {
                    forget_dir(tree, k, out);
                }
                let new: Vec<&String> = now.iter().filter(|k| !tree.dirs.contains_key(*k)).collect();
                for k in new {
                    list_dir(c, tree, k, out).await?;
                }
                return Ok(());
            }
            Err(ZkError::NoNode) => {
                let known: Vec<String> = tree.dirs.keys().cloned().collect();
                for k in known {
                    forget_dir(tree, &k, out);
                }
                let (stat, w) = c.check_and_watch_stat(&tree.root).await?;
                if stat.is_none() {
                    tree.arm(Target::Root, w);
                    return Ok(());
                }
                // Created meanwhile: list it.
            }
            Err(e) => return Err(e),
        }
    }
}

/// Handles fired watches, re-arming each; the events they amount to.
async fn handle(c: &Client, tree: &mut Tree, fired: Vec<Fired>) -> Result<Vec<Event>, StoreError> {
    let mut out = Vec::new();
    for (target, ev) in fired {
        if ev.event_type == EventType::Session {
            return Err(StoreError::SessionLost(format!("session {:?}", ev.session_state)));
        }
        match target {
            Target::Root => list_root(c, tree, &mut out).await.map_err(error)?,
            // A kind already forgotten (its znode gone) is listed again, if it comes
            // back, through the VNI's child watch.
            Target::Dir(kind) if tree.dirs.contains_key(&kind) => {
                list_dir(c, tree, &kind, &mut out).await.map_err(error)?;
            }
            Target::Dir(_) => {}
            Target::Key(kind, id) => {
                let p = tree.key_path(&kind, &id);
                let known = tree.dirs.get(&kind).is_some_and(|ids| ids.contains(&id));
                match read_key(c, &p).await.map_err(error)? {
                    Some((data, stat, w)) if known => {
                        tree.arm(Target::Key(kind, id), w);
                        if is_key(&stat) {
                            out.push(Event::Put(key(&p), data));
                        }
                    }
                    // Re-created after its kind's listing dropped it: that listing's
                    // watch lists it again.
                    Some(_) => {}
                    None if known => {
                        tree.dirs.get_mut(&kind).expect("known").remove(&id);
                        out.push(Event::Delete(key(&p)));
                    }
                    None => {}
                }
            }
        }
    }
    Ok(out)
}

impl Store for ZkStore {
    fn kind(&self) -> &'static str {
        "zk"
    }

    fn endpoint(&self) -> String {
        self.connection_string()
    }

    fn poll(&mut self, prefix: &str, resync: bool, wait: Duration) -> Result<Poll, StoreError> {
        let ended = self.connect()?;
        let c = self.client.as_ref().expect("connected");
        let stale = self.tree.as_ref().is_none_or(|t| t.prefix != prefix);
        if resync || ended.is_some() || stale {
            let root = path(prefix.trim_end_matches('/'));
            let mut tree =
                Tree { prefix: prefix.to_string(), root, dirs: BTreeMap::new(), watches: FuturesUnordered::new() };
            self.tree = None;
            let mut events = Vec::new();
            block(timed(REQUEST_TIMEOUT * 4, async { list_root(c, &mut tree, &mut events).await.map_err(error) }))?;
            let pairs = events
                .into_iter()
                .filter_map(|e| match e {
                    Event::Put(k, v) => Some((k, v)),
                    Event::Delete(_) => None,
                })
                .collect();
            self.tree = Some(tree);
            return Ok(Poll { update: Update::Full(pairs), reset: ended });
        }
        let tree = self.tree.as_mut().expect("listed");
        let wait = wait.min(HEARTBEAT);
        let first = block(futures_lite_or(tree.watches.next(), async move {
            async_io::Timer::after(wait).await;
            None
        }));
        let Some(first) = first else { return Ok(Poll { update: Update::Events(Vec::new()), reset: None }) };
        let mut fired = vec![first];
        while let Some(Some(f)) = tree.watches.next().now_or_never() {
            fired.push(f);
        }
        match block(timed(REQUEST_TIMEOUT * 4, handle(c, tree, fired))) {
            Ok(events) => Ok(Poll { update: Update::Events(events), reset: None }),
            Err(e) => {
                // Watches were consumed without being re-armed: list again next time.
                self.tree = None;
                Err(e)
            }
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Held>, StoreError> {
        let c = self.client()?;
        let p = path(key);
        match block(timed(REQUEST_TIMEOUT, async { Ok(c.get_data(&p).await) }))? {
            Ok((value, stat)) if is_key(&stat) => Ok(Some(Held {
                value,
                owner: (stat.ephemeral_owner != 0).then(|| Lease(format!("{:x}", stat.ephemeral_owner))),
                version: stat.version as u64,
            })),
            Ok(_) | Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(error(e)),
        }
    }

    fn put(&mut self, key: &str, value: &[u8], lease: Option<&Lease>) -> Result<bool, StoreError> {
        let p = path(key);
        match lease {
            Some(l) => {
                let c = self.leased(l)?;
                block(timed(REQUEST_TIMEOUT, async { put_leased(c, &p, value).await.map_err(error) }))
            }
            None => {
                let c = self.client()?;
                block(timed(REQUEST_TIMEOUT, async { put_plain(c, &p, value).await.map_err(error) }))
            }
        }
    }

    fn delete(&mut self, key: &str, version: Option<u64>) -> Result<bool, StoreError> {
        let c = self.client()?;
        let p = path(key);
        let v = version.map(|v| v as i32);
        match block(timed(REQUEST_TIMEOUT, async { Ok(c.delete(&p, v).await) }))? {
            Ok(()) => Ok(true),
            Err(ZkError::NoNode | ZkError::BadVersion) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }

    fn lease_grant(&mut self, _name: &str, ttl: Duration) -> Result<Lease, StoreError> {
        // A lease is a session of its own with the TTL as its timeout.
        self.client = None;
        self.tree = None;
        self.timeout = ttl;
        self.detached = true;
        let c = self.client()?;
        Ok(session_lease(c))
    }

    fn lease_renew(&mut self, lease: &Lease) -> Result<bool, StoreError> {
        match self.leased(lease) {
            Ok(c) => match block(timed(REQUEST_TIMEOUT, async { Ok(c.check_stat("/").await) }))? {
                Ok(_) => Ok(true),
                Err(e) => match error(e) {
                    StoreError::SessionLost(_) => Ok(false),
                    e => Err(e),
                },
            },
            Err(StoreError::SessionLost(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn lease_revoke(&mut self, lease: &Lease) -> Result<(), StoreError> {
        let Some(c) = self.client.take_if(|c| session_lease(c) == *lease) else { return Ok(()) };
        self.tree = None;
        let session = c.session().clone();
        drop(c);
        // The session is detached from its client: close it from a second connection
        // (its last handle closes it); the ensemble deletes its ephemeral znodes at once.
        ZkStore::end_session(&self.cfg, session)
    }

    fn read_lag(&self) -> Duration {
        WATCH_LAG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_onto_znodes() {
        assert_eq!(path("vxdp/vni/42/mac/02:00:00:00:00:01"), "/vxdp/vni/42/mac/02:00:00:00:00:01");
        assert_eq!(key("/vxdp/vni/42/vtep/fd00::1"), "vxdp/vni/42/vtep/fd00::1");
        assert_eq!(ancestors("/vxdp/vni/42/mac/x"), ["/vxdp", "/vxdp/vni", "/vxdp/vni/42", "/vxdp/vni/42/mac"]);
        assert!(ancestors("/a").is_empty());
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(error(ZkError::SessionExpired), StoreError::SessionLost(_)));
        assert!(matches!(error(ZkError::ConnectionLoss), StoreError::Unreachable(_)));
        assert!(matches!(error(ZkError::NoAuth), StoreError::Refused(_)));
    }

    #[test]
    fn the_server_a_session_moved_to_is_captured() {
        let seen = SeenCell::default();
        tracing::subscriber::with_default(Capture(seen.clone()), || {
            tracing::info!(target: "zookeeper_client::session", "{ESTABLISHED}{}", "tcp://127.0.0.1:21811");
            seen.lock().unwrap().session = "0x1".into();
            tracing::info!(target: "zookeeper_client::session", "enter state Disconnected due to x");
            tracing::info!(target: "other", "{ESTABLISHED}{}", "tcp://127.0.0.1:9");
            assert_eq!(seen.lock().unwrap().endpoint.as_deref(), Some("127.0.0.1:21811"));
            tracing::info!(target: "zookeeper_client::session", "{ESTABLISHED}{}", "tcp://127.0.0.1:21812");
        });
        assert_eq!(seen.lock().unwrap().endpoint.as_deref(), Some("127.0.0.1:21812"));
    }

    #[test]
    fn an_unreachable_ensemble_is_an_error_not_a_hang() {
        let mut s = ZkStore::new(ZkConfig::new(&["127.0.0.1:1"])).unwrap();
        assert!(matches!(s.get("vxdp/x"), Err(StoreError::Unreachable(_))));
    }
}
