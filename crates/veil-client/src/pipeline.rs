//! The bounded parallel chunk pipeline shared by upload and download: at most `parallel`
//! chunk tasks in flight, each finished one reported in completion order, the first
//! error ending the run (dropping the set aborts the tasks still running).

use crate::error::Result;
use std::future::Future;
use tokio::task::JoinSet;

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

/// Run `task(i)` for every index, `parallel` at a time, calling `done` with each result
/// as it finishes.
pub(crate) async fn run<T, F, Fut>(
    indices: impl IntoIterator<Item = u64>,
    parallel: usize,
    task: F,
    mut done: impl FnMut(T) -> Result<()>,
) -> Result<()>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for i in indices {
        while set.len() >= parallel.max(1) {
            if let Some(r) = set.join_next().await {
                done(r??)?;
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
        run(0..20, 3, task, |i| {
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
            2,
            |i| async move { if i == 4 { Err(crate::ClientError::Declined) } else { Ok(i) } },
            |_| Ok(()),
        )
        .await;
        assert!(matches!(r, Err(crate::ClientError::Declined)));
    }

    #[test]
    fn geometry_of_a_short_last_chunk() {
        let g = Geometry { chunk_size: 10, total: 25, count: 3 };
        assert_eq!((g.len(0), g.len(2), g.offset(2)), (10, 5, 20));
        assert!(g.is_last(2) && !g.is_last(1));
        assert_eq!(g.bytes_of([0, 2, 7].into_iter()), 15);
    }
}
