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
