//! The bounded parallel chunk pipeline shared by upload and download: chunk tasks in
//! flight up to a [`Window`] that follows the path, each finished one reported in
//! completion order, the first error ending the run (dropping the set aborts the tasks
//! still running).

use crate::error::Result;
use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many chunk requests to keep in flight: enough to cover the path's
/// bandwidth-delay product twice over, within a memory budget.
///
/// Every chunk in flight holds one chunk of memory (a sealed chunk waiting for its
/// acknowledgement, or a received one waiting to be written), so `max` is the memory
/// budget in chunks. Between `min` and `max` the window follows
/// `2 x rate x rtt / chunk + 2`, with the rate measured over the last completions and
/// the round trip from QUIC: on loopback that stays at `min`, on a 500 Mbit/s, 150 ms
/// path with 1 MiB chunks it asks for about 20.
pub(crate) struct Window {
    /// Fewest chunks in flight (also the start).
    pub min: usize,
    /// Most chunks in flight: the memory budget.
    pub max: usize,
    /// The path's smoothed round trip now.
    pub rtt: Box<dyn Fn() -> Duration + Send + Sync>,
}

impl Window {
    /// A fixed window of `n` (tests, and callers that measured their own).
    #[cfg(test)]
    pub fn fixed(n: usize) -> Window {
        Window { min: n, max: n, rtt: Box::new(|| Duration::ZERO) }
    }

    fn target(&self, rate: &Rate) -> usize {
        let rtt = (self.rtt)().as_secs_f64();
        let want = (2.0 * rate.chunks_per_sec() * rtt).ceil() as usize + 2;
        want.clamp(self.min.max(1), self.max.max(self.min).max(1))
    }
}

/// Completions per second over the last few.
#[derive(Default)]
struct Rate {
    done: VecDeque<Instant>,
}

impl Rate {
    const SPAN: usize = 16;

    fn record(&mut self) {
        if self.done.len() == Self::SPAN {
            self.done.pop_front();
        }
        self.done.push_back(Instant::now());
    }

    fn chunks_per_sec(&self) -> f64 {
        match (self.done.front(), self.done.back()) {
            (Some(a), Some(b)) if self.done.len() >= 2 => {
                let secs = b.duration_since(*a).as_secs_f64().max(1e-4);
                (self.done.len() - 1) as f64 / secs
            }
            _ => 0.0,
        }
    }
}

/// Chunk arithmetic of one transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    /// Plaintext bytes per chunk.
    pub chunk_size: u64,
    /// Plaintext bytes in all.
    pub total: u64,
    /// Number of chunks.
    pub count: u64,
}

impl Geometry {
    /// Plaintext length of chunk `i`.
    pub fn len(&self, i: u64) -> u64 {
        chunk_len(i, self.chunk_size, self.total)
    }

    /// Plaintext offset of chunk `i`.
    pub fn offset(&self, i: u64) -> u64 {
        i * self.chunk_size
    }

    /// Whether chunk `i` is the last.
    pub fn is_last(&self, i: u64) -> bool {
        i + 1 == self.count
    }

    /// Plaintext bytes of the chunks in `indices`.
    pub fn bytes_of(&self, indices: impl Iterator<Item = u64>) -> u64 {
        indices.filter(|i| *i < self.count).map(|i| self.len(i)).sum()
    }
}

/// Plaintext length of chunk `i`.
pub fn chunk_len(i: u64, cs: u64, total: u64) -> u64 {
    total.saturating_sub(i * cs).min(cs)
}

/// Run `task(i)` for every index, as many at a time as `window` says, calling `done`
/// with each result as it finishes.
pub(crate) async fn run<T, F, Fut>(
    indices: impl IntoIterator<Item = u64>,
    window: &Window,
    task: F,
    mut done: impl FnMut(T) -> Result<()>,
) -> Result<()>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    let mut rate = Rate::default();
    for i in indices {
        while set.len() >= window.target(&rate) {
            if let Some(r) = set.join_next().await {
                done(r??)?;
                rate.record();
            }
        }
        set.spawn(task(i));
    }
    while let Some(r) = set.join_next().await {
        done(r??)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn runs_every_index_at_most_parallel_at_a_time() {
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut seen = Vec::new();
        let task = |i: u64| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(i)
            }
        };
        run(0..20, &Window::fixed(3), task, |i| {
            seen.push(i);
            Ok(())
        })
        .await
        .unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn the_first_error_ends_the_run() {
        let r = run(
            0..10,
            &Window::fixed(2),
            |i| async move { if i == 4 { Err(crate::ClientError::Declined) } else { Ok(i) } },
            |_| Ok(()),
        )
        .await;
        assert!(matches!(r, Err(crate::ClientError::Declined)));
    }

    #[test]
    fn the_window_covers_twice_the_bandwidth_delay_product_within_its_bounds() {
        let w = |rtt_ms: u64| Window { min: 4, max: 24, rtt: Box::new(move || Duration::from_millis(rtt_ms)) };
        let mut rate = Rate::default();
        assert_eq!(w(150).target(&rate), 4, "no measurement yet: the minimum");
        // 60 chunks/s (about 500 Mbit/s of 1 MiB chunks).
        let t0 = Instant::now();
        rate.done = (0..16).map(|k| t0 + Duration::from_micros(k * 16_667)).collect();
        assert_eq!(w(150).target(&rate), 20);
        assert_eq!(w(1).target(&rate), 4, "loopback stays at the minimum");
        assert_eq!(w(2000).target(&rate), 24, "the memory budget caps it");
    }

    #[test]
    fn geometry_of_a_short_last_chunk() {
        let g = Geometry { chunk_size: 10, total: 25, count: 3 };
        assert_eq!((g.len(0), g.len(2), g.offset(2)), (10, 5, 20));
        assert!(g.is_last(2) && !g.is_last(1));
        assert_eq!(g.bytes_of([0, 2, 7].into_iter()), 15);
    }
}
