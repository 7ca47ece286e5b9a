//! `veil-netem`: the link emulator as a command, for benchmarks (benches/wan.sh).
//!
//! ```text
//! veil-netem --upstream 127.0.0.1:4433 --rate 100mbit --rtt 40ms [--loss 0.01]
//! ```
//! prints `veil-netem listening on ADDR`, forwards until SIGINT or SIGTERM, then prints
//! what it delivered and dropped.

use anyhow::Context;
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use veil_netem::{LinkConfig, Netem, parse_rate};

/// A userspace link between UDP clients and a server: rate limit with a FIFO queue and
/// tail drop, delay, jitter, loss and an MTU, the same in both directions.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where clients send.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The server.
    #[arg(long)]
    upstream: SocketAddr,
    /// Bottleneck rate per direction, e.g. 100mbit (default: none).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<u64>,
    /// Round-trip time (half of it each way), e.g. 40ms.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0ms")]
    rtt: Duration,
    /// Extra one-way delay, uniform in [0, JITTER).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0ms")]
    jitter: Duration,
    /// Let jitter reorder datagrams.
    #[arg(long)]
    reorder: bool,
    /// Loss probability per datagram and direction, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// IP MTU of the path (bigger datagrams are dropped).
    #[arg(long, default_value_t = 1500)]
    mtu: usize,
    /// Bottleneck queue in bytes (default: one bandwidth-delay product, at least 64 KiB).
    #[arg(long)]
    queue: Option<usize>,
    /// Seed of the loss and jitter generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!((0.0..=1.0).contains(&a.loss), "--loss is a probability between 0 and 1");
    let link = LinkConfig {
        rate_bps: a.rate,
        queue_bytes: a.queue,
        delay: a.rtt / 2,
        jitter: a.jitter,
        reorder: a.reorder,
        loss: a.loss,
        mtu: a.mtu,
        seed: a.seed,
    };
    let down = LinkConfig { seed: a.seed.wrapping_add(1), ..link.clone() };
    let em = Netem::start_on(a.listen, a.upstream, link, down).await.context("starting the emulator")?;
    println!("veil-netem listening on {}", em.addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let s = em.stats();
    eprintln!(
        "veil-netem: delivered {} datagrams; dropped {} at random, {} at the queue tail, {} over the MTU, {} while down",
        s.delivered, s.lost, s.queue_drops, s.too_big, s.blackholed
    );
    Ok(())
}
