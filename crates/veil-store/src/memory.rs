//! The in-memory reference backend.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use bytes::Bytes;
use tokio::sync::RwLock;

use crate::{Store, StoreError, clamp_range, validate_key, validate_prefix};

/// A [`Store`] that keeps every object in a map in memory.
///
/// For tests and as the reference behaviour of the trait; nothing survives the process.
/// "Durable" here means "visible to every later call".
#[derive(Default)]
pub struct MemoryStore {
    objects: RwLock<BTreeMap<String, Bytes>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print object bodies.
        let mut s = f.debug_struct("MemoryStore");
        if let Ok(objects) = self.objects.try_read() {
            s.field("objects", &objects.len());
        }
        s.finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        self.objects.write().await.insert(key.to_owned(), body);
        Ok(())
    }

    async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        validate_key(key)?;
        match self.objects.write().await.entry(key.to_owned()) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(slot) => {
                slot.insert(body);
                Ok(true)
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        Ok(self.objects.read().await.get(key).cloned())
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let objects = self.objects.read().await;
        let Some(body) = objects.get(key) else {
            return Ok(None);
        };
        let (start, end) = clamp_range(start, end, len_u64(body))?;
        // Both bounds are at most `body.len()`, so they fit in usize.
        let start = usize::try_from(start).map_err(|_| StoreError::InvalidRange)?;
        let end = usize::try_from(end).map_err(|_| StoreError::InvalidRange)?;
        Ok(Some(body.slice(start..end)))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        validate_key(key)?;
        Ok(self.objects.read().await.get(key).map(len_u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        Ok(self
            .objects
            .read()
            .await
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.objects.write().await.remove(key);
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        validate_prefix(prefix)?;
        let mut objects = self.objects.write().await;
        // Keys sort by bytes, so the prefix's keys form one contiguous run.
        let mut tail = objects.split_off(prefix);
        let rest = match tail.keys().find(|key| !key.starts_with(prefix)).cloned() {
            Some(first_after) => tail.split_off(first_after.as_str()),
            None => BTreeMap::new(),
        };
        objects.extend(rest);
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn len_u64(body: &Bytes) -> u64 {
    u64::try_from(body.len()).unwrap_or(u64::MAX)
}
