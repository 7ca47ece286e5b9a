//! # veil-netem: a userspace link emulator for tests and benchmarks
//!
//! The kernel here has no `netem`, so veil's wide-area tests put this UDP forwarder
//! between the clients and the relay. Clients send to [`Netem::addr`]; every client
//! address gets its own link (its own upstream socket, so the relay sees one address per
//! client) with, per direction, the [`LinkConfig`]:
//!
//! - a bottleneck of `rate_bps` with a FIFO queue of `queue_bytes` and tail drop;
//! - a one-way `delay` plus up to `jitter`, without reordering unless `reorder` is set;
//! - random `loss`, decided per datagram before the queue;
//! - an IP `mtu`: a datagram whose UDP payload does not fit is dropped, as a path with
//!   the don't-fragment bit set does (so QUIC's MTU discovery finds the real limit);
//!
//! and for the whole emulator, faults on demand: [`Netem::blackhole`] takes every link
//! down for a while, [`Netem::change_addresses`] gives every client a new apparent
//! address (a laptop moving from Wi-Fi to mobile) from its next datagram on.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use std::time::Duration;
//! let relay: std::net::SocketAddr = "127.0.0.1:4433".parse().unwrap();
//! let link = veil_netem::LinkConfig::symmetric(100_000_000, Duration::from_millis(40));
//! let em = veil_netem::Netem::start(relay, link.clone(), link).await?;
//! println!("point clients at {}", em.addr());
//! em.blackhole(Duration::from_secs(20));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// IPv4 + UDP header bytes: a datagram fits an `mtu` if its payload is at most
/// `mtu - 28`.
pub const IP_UDP_HEADER: usize = 28;
/// Largest datagram the emulator reads.
const MAX_DATAGRAM: usize = 65_536;

/// One direction of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Bottleneck rate in bits per second (None: no limit).
    pub rate_bps: Option<u64>,
    /// Bytes the bottleneck queue holds before it drops the tail (None: one
    /// bandwidth-delay product of the round trip `2 x delay`, at least 64 KiB).
    pub queue_bytes: Option<usize>,
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter)`.
    pub jitter: Duration,
    /// Let jitter reorder datagrams (otherwise a datagram never overtakes another).
    pub reorder: bool,
    /// Probability of losing a datagram, 0 to 1.
    pub loss: f64,
    /// IP MTU of the path.
    pub mtu: usize,
    /// Seed of the loss and jitter generator (runs are reproducible per seed).
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            rate_bps: None,
            queue_bytes: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: false,
            loss: 0.0,
            mtu: 1500,
            seed: 1,
        }
    }
}

impl LinkConfig {
    /// A link of `rate_bps` whose round trip is `rtt` (half of it each way).
    pub fn symmetric(rate_bps: u64, rtt: Duration) -> Self {
        LinkConfig { rate_bps: Some(rate_bps), delay: rtt / 2, ..LinkConfig::default() }
    }

    /// The queue limit in bytes.
    pub fn queue_limit(&self) -> usize {
        match (self.queue_bytes, self.rate_bps) {
            (Some(q), _) => q,
            (None, Some(r)) => ((r as f64 / 8.0 * (self.delay * 2).as_secs_f64()) as usize).max(64 << 10),
            (None, None) => usize::MAX,
        }
    }

    /// The largest UDP payload that fits the MTU.
    pub fn max_payload(&self) -> usize {
        self.mtu.saturating_sub(IP_UDP_HEADER)
    }
}

/// What happened to the datagrams so far (both directions, all clients).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Delivered.
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped at the tail of a full queue.
    pub queue_drops: u64,
    /// Dropped for not fitting the MTU.
    pub too_big: u64,
    /// Dropped while the link was down.
    pub blackholed: u64,
    /// Apparent client addresses used (one per client, plus one per address change).
    pub addresses: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    lost: AtomicU64,
    queue_drops: AtomicU64,
    too_big: AtomicU64,
    blackholed: AtomicU64,
    addresses: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    up: LinkConfig,
    down: LinkConfig,
    upstream: SocketAddr,
    down_until: Mutex<Option<Instant>>,
    generation: AtomicU64,
    counters: Counters,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn track(&self, h: AbortHandle) {
        if let Ok(mut t) = self.tasks.lock() {
            t.push(h);
        }
    }

    fn is_down(&self) -> bool {
        match self.down_until.lock() {
            Ok(d) => d.is_some_and(|until| Instant::now() < until),
            Err(_) => false,
        }
    }
}

/// A running emulator; stops when dropped.
#[derive(Debug)]
pub struct Netem {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Netem {
    /// Listen on an ephemeral loopback port and forward to `upstream` through links
    /// configured by `up` (client to server) and `down` (server to client).
    pub async fn start(upstream: SocketAddr, up: LinkConfig, down: LinkConfig) -> std::io::Result<Netem> {
        Self::start_on((Ipv4Addr::LOCALHOST, 0).into(), upstream, up, down).await
    }

    /// Like [`Netem::start`], listening on `listen`.
    pub async fn start_on(
        listen: SocketAddr,
        upstream: SocketAddr,
        up: LinkConfig,
        down: LinkConfig,
    ) -> std::io::Result<Netem> {
        let front = Arc::new(bind_udp(listen)?);
        let addr = front.local_addr()?;
        let shared = Arc::new(Shared {
            up,
            down,
            upstream,
            down_until: Mutex::new(None),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            tasks: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(front_loop(front, shared.clone()));
        shared.track(task.abort_handle());
        Ok(Netem { addr, shared })
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Take every link down (both directions) for `d` from now.
    pub fn blackhole(&self, d: Duration) {
        if let Ok(mut until) = self.shared.down_until.lock() {
            *until = Some(Instant::now() + d);
        }
    }

    /// From its next datagram on, every client reaches the server from a new address.
    pub fn change_addresses(&self) {
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            delivered: c.delivered.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            queue_drops: c.queue_drops.load(Ordering::Relaxed),
            too_big: c.too_big.load(Ordering::Relaxed),
            blackholed: c.blackholed.load(Ordering::Relaxed),
            addresses: c.addresses.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Netem {
    fn drop(&mut self) {
        if let Ok(tasks) = self.shared.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

/// One client: its upstream socket (replaced on an address change) and its two links.
#[derive(Debug)]
struct Client {
    upstream: Mutex<Arc<UdpSocket>>,
    generation: AtomicU64,
    up: Link,
    down: Arc<Link>,
}

async fn front_loop(front: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut clients: HashMap<SocketAddr, Arc<Client>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = front.recv_from(&mut buf).await else { continue };
        let client = match clients.get(&from) {
            Some(c) => c.clone(),
            None => match new_client(&front, &shared, from, clients.len() as u64).await {
                Ok(c) => {
                    clients.insert(from, c.clone());
                    c
                }
                Err(_) => continue,
            },
        };
        let generation = shared.generation.load(Ordering::Relaxed);
        if client.generation.load(Ordering::Relaxed) != generation
            && let Ok(sock) = upstream_socket(&shared).await
        {
            client.generation.store(generation, Ordering::Relaxed);
            spawn_reader(&shared, sock.clone(), client.down.clone());
            if let Ok(mut u) = client.upstream.lock() {
                *u = sock;
            }
        }
        client.up.offer(&buf[..n]);
    }
}

/// A UDP socket with 4 MiB buffers (best effort): the defaults drop bursts at the rates
/// the benchmarks emulate, which would add loss nobody asked for.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

async fn upstream_socket(shared: &Shared) -> std::io::Result<Arc<UdpSocket>> {
    let bind: SocketAddr = match shared.upstream {
        SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    };
    let s = bind_udp(bind)?;
    s.connect(shared.upstream).await?;
    shared.counters.addresses.fetch_add(1, Ordering::Relaxed);
    Ok(Arc::new(s))
}

async fn new_client(
    front: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    from: SocketAddr,
    n: u64,
) -> std::io::Result<Arc<Client>> {
    let sock = upstream_socket(shared).await?;
    let seed = shared.up.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let down = Arc::new(Link::spawn(shared, &shared.down, seed ^ 0xD0, Sink::Front(front.clone(), from)));
    let client = Arc::new_cyclic(|weak: &std::sync::Weak<Client>| Client {
        upstream: Mutex::new(sock.clone()),
        generation: AtomicU64::new(shared.generation.load(Ordering::Relaxed)),
        up: Link::spawn(shared, &shared.up, seed, Sink::Upstream(weak.clone())),
        down: down.clone(),
    });
    spawn_reader(shared, sock, down);
    Ok(client)
}

/// Datagrams from the server on `sock` go down `link`.
fn spawn_reader(shared: &Arc<Shared>, sock: Arc<UdpSocket>, link: Arc<Link>) {
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match sock.recv(&mut buf).await {
                Ok(n) => link.offer(&buf[..n]),
                // ICMP port unreachable and the like: the server may come back.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    });
    shared.track(task.abort_handle());
}

#[derive(Debug, Clone)]
enum Sink {
    /// To the server, through the client's current upstream socket.
    Upstream(std::sync::Weak<Client>),
    /// To the client.
    Front(Arc<UdpSocket>, SocketAddr),
}

impl Sink {
    async fn send(&self, pkt: &[u8]) {
        match self {
            Sink::Upstream(c) => {
                let sock = c.upgrade().and_then(|c| c.upstream.lock().ok().map(|s| s.clone()));
                if let Some(s) = sock {
                    let _ = s.send(pkt).await;
                }
            }
            Sink::Front(s, to) => {
                let _ = s.send_to(pkt, to).await;
            }
        }
    }
}

/// One direction of one client's link: admission (MTU, blackhole, loss, queue) here,
/// serialisation and delay in its tasks.
#[derive(Debug)]
struct Link {
    shared: Arc<Shared>,
    max_payload: usize,
    queue_limit: usize,
    loss: f64,
    queued: Arc<AtomicUsize>,
    rng: Mutex<Rng>,
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
}

impl Link {
    fn spawn(shared: &Arc<Shared>, cfg: &LinkConfig, seed: u64, sink: Sink) -> Link {
        let (tx, rx) = mpsc::unbounded_channel();
        let (dtx, drx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let s = tokio::spawn(serialise(cfg.clone(), Rng::new(seed ^ 0x5151), rx, dtx, queued.clone()));
        let d = tokio::spawn(deliver(drx, sink, shared.clone()));
        shared.track(s.abort_handle());
        shared.track(d.abort_handle());
        Link {
            shared: shared.clone(),
            max_payload: cfg.max_payload(),
            queue_limit: cfg.queue_limit(),
            loss: cfg.loss,
            queued,
            rng: Mutex::new(Rng::new(seed)),
            tx,
        }
    }

    fn offer(&self, pkt: &[u8]) {
        let c = &self.shared.counters;
        if pkt.len() > self.max_payload {
            c.too_big.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.shared.is_down() {
            c.blackholed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.loss > 0.0 && self.rng.lock().is_ok_and(|mut r| r.unit() < self.loss) {
            c.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.queued.load(Ordering::Relaxed) + pkt.len() > self.queue_limit {
            c.queue_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queued.fetch_add(pkt.len(), Ordering::Relaxed);
        let _ = self.tx.send((Instant::now(), pkt.to_vec()));
    }
}

/// The bottleneck: datagrams leave one after the other at the link's rate (virtual
/// departure times, so timer granularity costs burstiness, not rate), then wait out the
/// delay and jitter.
async fn serialise(
    cfg: LinkConfig,
    mut rng: Rng,
    mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    dtx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    queued: Arc<AtomicUsize>,
) {
    let mut next_free = Instant::now();
    let mut last_due = Instant::now();
    while let Some((arrived, pkt)) = rx.recv().await {
        let start = next_free.max(arrived);
        let depart = match cfg.rate_bps {
            Some(r) if r > 0 => start + Duration::from_nanos((pkt.len() as u64 * 8).saturating_mul(1_000_000_000) / r),
            _ => start,
        };
        next_free = depart;
        if depart > Instant::now() {
            tokio::time::sleep_until(depart).await;
        }
        queued.fetch_sub(pkt.len(), Ordering::Relaxed);
        let jitter = cfg.jitter.mul_f64(rng.unit());
        let mut due = depart + cfg.delay + jitter;
        if !cfg.reorder {
            due = due.max(last_due);
            last_due = due;
        }
        if dtx.send((due, pkt)).is_err() {
            return;
        }
    }
}

/// The delay line: hands each datagram to the sink when it is due, earliest first.
async fn deliver(mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>, sink: Sink, shared: Arc<Shared>) {
    let mut line: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut open = true;
    loop {
        let next = line.peek().map(|Reverse((t, _, _))| *t);
        if !open && next.is_none() {
            return;
        }
        tokio::select! {
            m = rx.recv(), if open => match m {
                Some((due, pkt)) => {
                    seq += 1;
                    line.push(Reverse((due, seq, pkt)));
                }
                None => open = false,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while line.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                    if let Some(Reverse((_, _, pkt))) = line.pop() {
                        sink.send(&pkt).await;
                        shared.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// xorshift64*: enough randomness for loss and jitter, reproducible per seed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Parse a rate such as `100mbit`, `1.5gbit`, `800kbit` or a bare number of bits/s.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("gbit") {
        (n, 1e9)
    } else if let Some(n) = t.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix("kbit") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("bit") {
        (n, 1.0)
    } else {
        (t.as_str(), 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("not a rate: {s:?} (try 100mbit)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("not a rate: {s:?}"));
    }
    Ok((v * mult) as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                // Echo the payload with the sender's port appended.
                let mut out = buf[..n].to_vec();
                out.extend_from_slice(&from.port().to_be_bytes());
                let _ = s.send_to(&out, from).await;
            }
        });
        (addr, h)
    }

    #[tokio::test]
    async fn delays_rate_limits_and_drops_what_does_not_fit() {
        let (server, _h) = echo_server().await;
        let link = LinkConfig { delay: Duration::from_millis(30), ..LinkConfig::default() };
        let em = Netem::start(server, link.clone(), link).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        let t = Instant::now();
        c.send(b"ping").await.unwrap();
        let mut buf = [0u8; 2048];
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(n, 6);
        assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
        // 1473 bytes do not fit a 1500-byte MTU with IPv4 and UDP headers; 1470 do, and
        // so does their echo of 1472.
        c.send(&[0u8; 1473]).await.unwrap();
        c.send(&[0u8; 1470]).await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(n, 1472);
        assert_eq!(em.stats().too_big, 1);
    }

    #[tokio::test]
    async fn the_rate_limit_spaces_datagrams_and_the_queue_drops_its_tail() {
        let (server, _h) = echo_server().await;
        // 8 Mbit/s: 1000-byte datagrams leave every millisecond; the queue holds 20.
        let up = LinkConfig { rate_bps: Some(8_000_000), queue_bytes: Some(20_000), ..LinkConfig::default() };
        let em = Netem::start(server, up, LinkConfig::default()).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        let t = Instant::now();
        for _ in 0..50 {
            c.send(&[1u8; 1000]).await.unwrap();
        }
        let mut got = 0;
        let mut buf = [0u8; 2048];
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), c.recv(&mut buf)).await {
            got += 1;
        }
        let s = em.stats();
        assert_eq!(got as u64 + s.queue_drops, 50, "{s:?}");
        assert!((20..=22).contains(&got), "{got} delivered, {s:?}");
        assert!(t.elapsed() >= Duration::from_millis(19));
    }

    #[tokio::test]
    async fn loss_is_about_what_was_asked() {
        let (server, _h) = echo_server().await;
        let up = LinkConfig { loss: 0.25, seed: 7, ..LinkConfig::default() };
        let em = Netem::start(server, up, LinkConfig::default()).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        for _ in 0..2000 {
            c.send(b"x").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lost = em.stats().lost;
        assert!((400..600).contains(&lost), "lost {lost} of 2000");
    }

    #[tokio::test]
    async fn a_blackhole_drops_everything_until_it_ends() {
        let (server, _h) = echo_server().await;
        let em = Netem::start(server, LinkConfig::default(), LinkConfig::default()).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        em.blackhole(Duration::from_millis(200));
        c.send(b"a").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(tokio::time::timeout(Duration::from_millis(100), c.recv(&mut buf)).await.is_err());
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.send(b"b").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), c.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(buf[0], b'b');
        assert_eq!(n, 3);
        assert_eq!(em.stats().blackholed, 1);
    }

    #[tokio::test]
    async fn an_address_change_shows_the_server_a_new_source_port() {
        let (server, _h) = echo_server().await;
        let em = Netem::start(server, LinkConfig::default(), LinkConfig::default()).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        let mut buf = [0u8; 64];
        c.send(b"1").await.unwrap();
        c.recv(&mut buf).await.unwrap();
        let before = u16::from_be_bytes([buf[1], buf[2]]);
        em.change_addresses();
        c.send(b"2").await.unwrap();
        c.recv(&mut buf).await.unwrap();
        let after = u16::from_be_bytes([buf[1], buf[2]]);
        assert_ne!(before, after);
        assert_eq!(em.stats().addresses, 2);
    }

    #[tokio::test]
    async fn without_reorder_jitter_keeps_the_order() {
        let (server, _h) = echo_server().await;
        let up = LinkConfig { jitter: Duration::from_millis(20), ..LinkConfig::default() };
        let em = Netem::start(server, up, LinkConfig::default()).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(em.addr()).await.unwrap();
        for i in 0..100u8 {
            c.send(&[i]).await.unwrap();
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        let mut buf = [0u8; 64];
        for i in 0..100u8 {
            c.recv(&mut buf).await.unwrap();
            assert_eq!(buf[0], i);
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("64000"), Ok(64_000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-1mbit").is_err());
    }
}
