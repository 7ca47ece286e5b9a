//! `stream_latency`: latency and throughput that veil's live streams add on loopback.
//!
//! For every scenario and viewer count it starts a fresh `veil-relay` (its own data folder),
//! one `veil stream --json` publisher with a piped stdin and N `veil watch` viewers with
//! piped stdouts, every process on 127.0.0.1 with its own `VEIL_HOME`. Viewers join one
//! after the other (each runs its own key exchange); nothing is written before the
//! publisher reports all N key exchanges and N attached viewers, so every viewer gets the
//! stream from its first segment.
//!
//! The publisher's stdin gets records `[u64 seq][u64 send time, ns since the UNIX epoch]
//! [payload]` (little endian), the send time taken just before the `write`:
//!
//! * `small`: 16-byte records at 100 Hz for `--seconds` (default 10 s);
//! * `bulk`:  64 KiB records paced at 30 MB/s (10^6 bytes) for `--seconds`;
//! * `max`:   `--max-mib` (default 512) MiB of 64 KiB records, as fast as the pipe takes them.
//!
//! One thread per viewer parses its stdout (records may be split or merged across reads)
//! and records latency = time the record's last byte was read - send time. A record is
//! accepted only if its sequence number moves forward and its timestamp is plausible; on
//! anything else the parser slides one byte (a viewer skipped forward by the relay may
//! resume mid-record), so losses are counted, never misparsed.
//!
//! Reported per row: records delivered / expected, p50 / p99 / max latency over all
//! viewers, per-viewer goodput (slowest viewer and sum), relay CPU seconds (utime + stime
//! from /proc/<pid>/stat, delta over the measured phase, set-up excluded) and relay peak
//! RSS (VmHWM), plus the CPU of the veil clients (read from /proc while they are zombies,
//! so it is their whole life, key exchange included) and "fell behind" warnings printed by
//! viewers. Output is a Markdown table on stdout; progress goes to stderr.
//!
//! ```text
//! stream_latency [--bin-dir target/release] [--scenarios small,bulk,max] [--viewers 1,10]
//!                [--seconds 10] [--max-mib 512] [--record] [--keep]
//! ```
//!
//! Only processes it started are stopped (by their own handle); temporary folders are
//! removed at the end unless `--keep` is given.

use anyhow::{Context, Result, anyhow, bail};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HEADER: usize = 16;
const BULK_RECORD: usize = 64 * 1024;
const SMALL_RECORD: usize = 16;
const BULK_RATE: f64 = 30e6;
const SMALL_HZ: u64 = 100;
/// The code every scenario uses (each scenario has its own relay).
const CODE: &str = "5-veil-bench-latency";
/// Longest the set-up (relay start, key exchanges) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the processes may take to finish once the publisher's stdin is closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Small,
    Bulk,
    Max,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode> {
        match s {
            "small" => Ok(Mode::Small),
            "bulk" => Ok(Mode::Bulk),
            "max" => Ok(Mode::Max),
            _ => bail!("unknown scenario {s:?} (small, bulk, max)"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Small => "small 16 B @ 100 Hz",
            Mode::Bulk => "bulk 64 KiB @ 30 MB/s",
            Mode::Max => "max 64 KiB, unpaced",
        }
    }

    fn record_size(self) -> usize {
        match self {
            Mode::Small => SMALL_RECORD,
            Mode::Bulk | Mode::Max => BULK_RECORD,
        }
    }

    fn records(self, cfg: &Config) -> u64 {
        match self {
            Mode::Small => SMALL_HZ * cfg.seconds,
            Mode::Bulk => (BULK_RATE * cfg.seconds as f64 / BULK_RECORD as f64).ceil() as u64,
            Mode::Max => (cfg.max_mib << 20) / BULK_RECORD as u64,
        }
    }

    fn interval(self) -> Option<Duration> {
        match self {
            Mode::Small => Some(Duration::from_nanos(1_000_000_000 / SMALL_HZ)),
            Mode::Bulk => Some(Duration::from_secs_f64(BULK_RECORD as f64 / BULK_RATE)),
            Mode::Max => None,
        }
    }
}

#[derive(Debug)]
struct Config {
    bin_dir: PathBuf,
    modes: Vec<Mode>,
    viewers: Vec<u32>,
    seconds: u64,
    max_mib: u64,
    keep: bool,
    record: bool,
    clk_tck: f64,
}

fn usage() -> &'static str {
    "usage: stream_latency [--bin-dir DIR] [--scenarios small,bulk,max] [--viewers 1,10] [--seconds 10] \
     [--max-mib 512] [--record] [--keep]"
}

fn parse_args() -> Result<Config> {
    let mut cfg = Config {
        bin_dir: PathBuf::from("target/release"),
        modes: vec![Mode::Small, Mode::Bulk, Mode::Max],
        viewers: vec![1, 10],
        seconds: 10,
        max_mib: 512,
        keep: false,
        record: false,
        clk_tck: 100.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or_else(|| anyhow!("{name} needs a value\n{}", usage())),
            }
        };
        match name.as_str() {
            "--bin-dir" => cfg.bin_dir = PathBuf::from(value()?),
            "--scenarios" => cfg.modes = value()?.split(',').map(|s| Mode::parse(s.trim())).collect::<Result<_>>()?,
            "--viewers" => {
                cfg.viewers = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<u32>().map_err(|e| anyhow!("--viewers {s:?}: {e}")))
                    .collect::<Result<_>>()?;
                if cfg.viewers.iter().any(|&n| n == 0 || n > 64) {
                    bail!("--viewers: each count must be 1..=64");
                }
            }
            "--seconds" => cfg.seconds = value()?.parse().context("--seconds")?,
            "--max-mib" => cfg.max_mib = value()?.parse().context("--max-mib")?,
            "--keep" => cfg.keep = true,
            "--record" => cfg.record = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?}\n{}", usage()),
        }
    }
    if cfg.seconds == 0 || cfg.max_mib == 0 {
        bail!("--seconds and --max-mib must be positive");
    }
    Ok(cfg)
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Clock ticks per second for /proc/<pid>/stat times.
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// (state, utime + stime in ticks) of a process.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: [0] is field 3 (state), utime is field 14, stime field 15.
    let state = f.first()?.chars().next()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((state, ut + st))
}

/// Peak resident set size in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A temporary folder removed on drop (unless kept).
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn new(keep: bool) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("veil-stream-latency.{}.{}", std::process::id(), now_ns()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("[stream_latency] kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The processes one scenario started; any still running on drop is killed (by its own
/// handle) and reaped.
#[derive(Debug, Default)]
struct Started {
    children: Vec<Child>,
}

impl Started {
    fn add(&mut self, c: Child) -> usize {
        self.children.push(c);
        self.children.len() - 1
    }

    fn get(&mut self, i: usize) -> Result<&mut Child> {
        self.children.get_mut(i).ok_or_else(|| anyhow!("no child {i}"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Wait for a child to exit; returns its status and its CPU seconds, read while it is a
/// zombie (so the whole life of the process), if /proc had it.
fn wait_exit(child: &mut Child, deadline: Instant, tck: f64) -> Result<(ExitStatus, Option<f64>)> {
    let pid = child.id();
    let mut cpu = None;
    while let Some((state, ticks)) = proc_stat(pid) {
        cpu = Some(ticks as f64 / tck);
        if state == 'Z' || state == 'X' {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("process {pid} did not exit in time (killed)");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().context("waiting for a child")?;
    Ok((status, cpu))
}

/// Lines of a child's output, on a channel (the thread ends at EOF).
fn line_channel<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn log_tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
    if tail.is_empty() { format!("({} is empty)", path.display()) } else { format!("{}: {tail}", path.display()) }
}

/// The value after `"key":` in one JSON line (numbers only).
fn json_u64(line: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let at = line.find(&pat)? + pat.len();
    let digits: String = line[at..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The publisher's `--json` events.
#[derive(Debug)]
struct PubEvents {
    rx: mpsc::Receiver<String>,
    exchanged: u32,
    viewers: u32,
    code: bool,
    log: PathBuf,
}

impl PubEvents {
    fn take(&mut self, line: &str) {
        if line.contains("\"event\":\"key_exchanged\"") {
            self.exchanged += 1;
        } else if line.contains("\"event\":\"viewers\"") {
            if let Some(n) = json_u64(line, "count") {
                self.viewers = n as u32;
            }
        } else if line.contains("\"event\":\"code\"") {
            self.code = true;
        }
    }

    fn wait_until(&mut self, what: &str, deadline: Instant, done: impl Fn(&PubEvents) -> bool) -> Result<()> {
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.take(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("timed out waiting for {what}; {}", log_tail(&self.log)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the publisher exited while waiting for {what}; {}", log_tail(&self.log))
                }
            }
        }
        Ok(())
    }
}

/// What one viewer's reader saw.
#[derive(Debug, Default)]
struct ViewerStats {
    latencies_ns: Vec<u64>,
    records: u64,
    bytes: u64,
    desync_bytes: u64,
    last_recv_ns: u64,
}

/// Parse records from a viewer's stdout until EOF.
fn read_viewer(mut out: ChildStdout, rec: usize, total: u64, not_before_ns: u64) -> ViewerStats {
    let mut st = ViewerStats { latencies_ns: Vec::with_capacity(total as usize), ..Default::default() };
    let mut buf = vec![0u8; (1 << 20).max(4 * rec)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut next_seq = 0u64;
    loop {
        if end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match out.read(&mut buf[end..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = now_ns();
        end += n;
        st.bytes += n as u64;
        st.last_recv_ns = now;
        while end - start >= rec {
            let h = &buf[start..start + HEADER];
            let seq = u64::from_le_bytes(h[..8].try_into().unwrap_or([0xff; 8]));
            let ts = u64::from_le_bytes(h[8..16].try_into().unwrap_or([0; 8]));
            let plausible = seq < total && seq >= next_seq && ts >= not_before_ns && ts <= now + 1_000_000;
            if plausible {
                st.latencies_ns.push(now.saturating_sub(ts));
                st.records += 1;
                next_seq = seq + 1;
                start += rec;
            } else {
                st.desync_bytes += 1;
                start += 1;
            }
        }
        if start == end {
            start = 0;
            end = 0;
        }
    }
    st
}

/// What the writer did.
#[derive(Debug)]
struct Sent {
    records: u64,
    first_ns: u64,
    seconds: f64,
}

fn write_records(stdin: &mut impl Write, mode: Mode, count: u64) -> Result<Sent> {
    let rec = mode.record_size();
    let mut buf = vec![0u8; rec];
    let interval = mode.interval();
    let t0 = Instant::now();
    let first_ns = now_ns();
    for seq in 0..count {
        if let Some(iv) = interval {
            let target = t0 + iv.mul_f64(seq as f64);
            let now = Instant::now();
            if target > now {
                thread::sleep(target - now);
            }
        }
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
        stdin.write_all(&buf).with_context(|| format!("writing record {seq} to the publisher"))?;
    }
    Ok(Sent { records: count, first_ns, seconds: t0.elapsed().as_secs_f64() })
}

/// One table row.
#[derive(Debug)]
struct Row {
    mode: Mode,
    viewers: u32,
    result: Result<Measured>,
}

#[derive(Debug)]
struct Measured {
    sent: u64,
    delivered: u64,
    expected: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    min_viewer_mbps: f64,
    sum_mbps: f64,
    send_seconds: f64,
    relay_cpu_s: f64,
    relay_cpu_pct: f64,
    relay_hwm_mib: f64,
    publisher_cpu_s: Option<f64>,
    viewers_cpu_s: Option<f64>,
    fell_behind: usize,
    desync_bytes: u64,
    load: String,
    notes: Vec<String>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

fn run_scenario(cfg: &Config, tmp: &Path, mode: Mode, n: u32) -> Result<Measured> {
    let dir = tmp.join(format!("{}-{n}v", format!("{mode:?}").to_lowercase()));
    let data = dir.join("relay-data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let log = |name: &str| -> Result<(PathBuf, File)> {
        let p = dir.join(name);
        let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok((p, f))
    };
    let mut started = Started::default();
    let setup_deadline = Instant::now() + SETUP_TIMEOUT;

    // Relay.
    let (relay_log, f) = log("relay.log")?;
    let mut relay = Command::new(cfg.bin_dir.join("veil-relay"))
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(f)
        .spawn()
        .context("starting veil-relay")?;
    let relay_out = relay.stdout.take().ok_or_else(|| anyhow!("no relay stdout"))?;
    let relay_pid = relay.id();
    started.add(relay);
    let relay_lines = line_channel(relay_out);
    let relay_addr = loop {
        let left = setup_deadline.saturating_duration_since(Instant::now());
        let line =
            relay_lines.recv_timeout(left).map_err(|_| anyhow!("the relay did not start; {}", log_tail(&relay_log)))?;
        if let Some(a) = line.strip_prefix("clients: VEIL_RELAY=") {
            break a.trim().to_string();
        }
    };

    let veil = |home: &str| -> Result<Command> {
        let h = dir.join(home);
        std::fs::create_dir_all(&h).with_context(|| format!("creating {}", h.display()))?;
        let mut c = Command::new(cfg.bin_dir.join("veil"));
        c.env("VEIL_HOME", &h).env("VEIL_RELAY", &relay_addr).env_remove("RUST_LOG");
        Ok(c)
    };

    // Publisher.
    let (pub_log, f) = log("publisher.log")?;
    let mut publisher = veil("home-publisher")?
        .args(["stream", "--code", CODE, "--viewers", &n.to_string(), "--json"])
        .args(if cfg.record { &["--record"][..] } else { &[] })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(f)
        .spawn()
        .context("starting veil stream")?;
    let mut pub_in = publisher.stdin.take().ok_or_else(|| anyhow!("no publisher stdin"))?;
    let pub_out = publisher.stdout.take().ok_or_else(|| anyhow!("no publisher stdout"))?;
    let pub_idx = started.add(publisher);
    let mut events = PubEvents { rx: line_channel(pub_out), exchanged: 0, viewers: 0, code: false, log: pub_log };
    events.wait_until("the code event", setup_deadline, |e| e.code)?;

    // Viewers, one after the other.
    let rec = mode.record_size();
    let count = mode.records(cfg);
    let not_before = now_ns();
    let mut viewer_idx = Vec::new();
    let mut viewer_logs = Vec::new();
    let mut readers = Vec::new();
    for k in 0..n {
        let (vlog, f) = log(&format!("viewer-{k}.log"))?;
        let mut v = veil(&format!("home-viewer-{k}"))?
            .args(["watch", CODE])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting viewer {k}"))?;
        let out = v.stdout.take().ok_or_else(|| anyhow!("no viewer stdout"))?;
        viewer_idx.push(started.add(v));
        readers.push(thread::spawn(move || read_viewer(out, rec, count, not_before)));
        events
            .wait_until(&format!("key exchange {}", k + 1), setup_deadline, |e| e.exchanged > k)
            .with_context(|| log_tail(&vlog))?;
        viewer_logs.push(vlog);
    }
    events.wait_until(&format!("{n} attached viewer(s)"), setup_deadline, |e| e.viewers >= n)?;
    // Keep draining the publisher's events so it never blocks on its stdout.
    let rx = std::mem::replace(&mut events.rx, mpsc::channel().1);
    thread::spawn(move || while rx.recv().is_ok() {});

    // Measured phase.
    let load_before = loadavg();
    let cpu0 = proc_stat(relay_pid).map(|x| x.1).ok_or_else(|| anyhow!("no /proc stat for the relay"))?;
    let wall = Instant::now();
    let sent = write_records(&mut pub_in, mode, count);
    drop(pub_in);
    let sent = sent?;
    let mut notes = Vec::new();
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    let (st, publisher_cpu_s) = wait_exit(started.get(pub_idx)?, drain_deadline, cfg.clk_tck)?;
    if !st.success() {
        notes.push(format!("publisher {st}: {}", log_tail(&events.log)));
    }
    let mut viewers_cpu = Some(0.0);
    for (k, &i) in viewer_idx.iter().enumerate() {
        let (st, cpu) = wait_exit(started.get(i)?, drain_deadline, cfg.clk_tck)?;
        if !st.success() {
            notes.push(format!("viewer {k} {st}: {}", viewer_logs.get(k).map(|p| log_tail(p)).unwrap_or_default()));
        }
        viewers_cpu = match (viewers_cpu, cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    let mut stats = Vec::new();
    for r in readers {
        stats.push(r.join().map_err(|_| anyhow!("a reader thread panicked"))?);
    }
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu1 = proc_stat(relay_pid).map(|x| x.1).ok_or_else(|| anyhow!("the relay exited during the run"))?;
    let hwm = vm_hwm_kib(relay_pid).unwrap_or(0);
    let load_after = loadavg();
    drop(started);

    let fell_behind = viewer_logs
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().filter(|l| l.contains("fell behind")).count())
        .sum();
    let mut all: Vec<u64> = stats.iter().flat_map(|s| s.latencies_ns.iter().copied()).collect();
    all.sort_unstable();
    let mbps: Vec<f64> = stats
        .iter()
        .map(|s| {
            let secs = s.last_recv_ns.saturating_sub(sent.first_ns) as f64 / 1e9;
            if secs > 0.0 { s.bytes as f64 / secs / 1e6 } else { 0.0 }
        })
        .collect();
    let relay_cpu_s = cpu1.saturating_sub(cpu0) as f64 / cfg.clk_tck;
    Ok(Measured {
        sent: sent.records,
        delivered: stats.iter().map(|s| s.records).sum(),
        expected: sent.records * u64::from(n),
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
        max_ms: all.last().map_or(f64::NAN, |&x| x as f64 / 1e6),
        min_viewer_mbps: mbps.iter().copied().fold(f64::INFINITY, f64::min),
        sum_mbps: mbps.iter().sum(),
        send_seconds: sent.seconds,
        relay_cpu_s,
        relay_cpu_pct: 100.0 * relay_cpu_s / elapsed,
        relay_hwm_mib: hwm as f64 / 1024.0,
        publisher_cpu_s,
        viewers_cpu_s: viewers_cpu,
        fell_behind,
        desync_bytes: stats.iter().map(|s| s.desync_bytes).sum(),
        load: format!("{load_before} → {load_after}"),
        notes,
    })
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "?".into(), |v| format!("{v:.2}"))
}

fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | viewers | delivered / expected | p50 ms | p99 ms | max ms | MB/s per viewer (min) | MB/s all \
         viewers | relay CPU s | relay CPU % | relay peak RSS MiB | publisher CPU s | viewers CPU s | fell behind \
         | load (1/5/15 min) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut notes = Vec::new();
    for r in rows {
        match &r.result {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} / {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {:.2} | {:.0} | {:.1} | {} | {} | {} | {} |",
                    r.mode.label(),
                    r.viewers,
                    m.delivered,
                    m.expected,
                    m.p50_ms,
                    m.p99_ms,
                    m.max_ms,
                    m.min_viewer_mbps,
                    m.sum_mbps,
                    m.relay_cpu_s,
                    m.relay_cpu_pct,
                    m.relay_hwm_mib,
                    opt(m.publisher_cpu_s),
                    opt(m.viewers_cpu_s),
                    m.fell_behind,
                    m.load,
                );
                if m.desync_bytes > 0 {
                    notes.push(format!(
                        "{} / {}: {} byte(s) skipped to find record boundaries",
                        r.mode.label(),
                        r.viewers,
                        m.desync_bytes
                    ));
                }
                if r.mode == Mode::Max {
                    notes.push(format!(
                        "{} / {}: {} records written in {:.2} s ({:.1} MB/s into the publisher)",
                        r.mode.label(),
                        r.viewers,
                        m.sent,
                        m.send_seconds,
                        (m.sent * BULK_RECORD as u64) as f64 / m.send_seconds / 1e6
                    ));
                }
                for n in &m.notes {
                    notes.push(format!("{} / {}: {n}", r.mode.label(), r.viewers));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "| {} | {} | FAILED | | | | | | | | | | | | |", r.mode.label(), r.viewers);
                notes.push(format!("{} / {}: {e:#}", r.mode.label(), r.viewers));
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(s);
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

fn goals(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        let Ok(m) = &r.result else { continue };
        if r.mode == Mode::Small && r.viewers == 1 {
            let ok = m.p99_ms < 5.0 && m.delivered == m.expected;
            let _ = writeln!(
                s,
                "- goal p99 < 5 ms, small messages, 1 viewer: {:.3} ms: {}",
                m.p99_ms,
                if ok { "MET" } else { "NOT MET" }
            );
        }
        if r.mode == Mode::Max && r.viewers == 1 {
            let ok = m.min_viewer_mbps >= 200.0;
            let _ = writeln!(
                s,
                "- goal >= 200 MB/s to one viewer: {:.1} MB/s: {}",
                m.min_viewer_mbps,
                if ok { "MET" } else { "NOT MET" }
            );
        }
    }
    s
}

fn run() -> Result<()> {
    let mut cfg = parse_args()?;
    for b in ["veil", "veil-relay"] {
        let p = cfg.bin_dir.join(b);
        if !p.is_file() {
            bail!(
                "{} not found (build with cargo build --release -p veil-cli -p veil-relay, or pass --bin-dir)",
                p.display()
            );
        }
    }
    cfg.clk_tck = clk_tck();
    let tmp = TempDir::new(cfg.keep)?;
    let cores = thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    eprintln!("[stream_latency] {cores} core(s), load {}; temp {}", loadavg(), tmp.path.display());
    let mut rows = Vec::new();
    for &mode in &cfg.modes {
        for &n in &cfg.viewers {
            eprintln!("[stream_latency] {} with {n} viewer(s)...", mode.label());
            let result = run_scenario(&cfg, &tmp.path, mode, n);
            match &result {
                Ok(m) => eprintln!(
                    "[stream_latency]   delivered {}/{}, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {:.1} MB/s (min viewer)",
                    m.delivered, m.expected, m.p50_ms, m.p99_ms, m.max_ms, m.min_viewer_mbps
                ),
                Err(e) => eprintln!("[stream_latency]   FAILED: {e:#}"),
            }
            rows.push(Row { mode, viewers: n, result });
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", table(&rows))?;
    write!(out, "{}", goals(&rows))?;
    writeln!(
        out,
        "\n{cores} core(s); latency = viewer stdout read - publisher stdin write (wall clock, same host); \
         MB/s = 10^6 bytes/s from the first write to the viewer's last read; relay CPU over the measured phase."
    )?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream_latency: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
