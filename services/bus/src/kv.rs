//! Typed access to a KV bucket holding protobuf values, with compare-and-set updates.

use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;

use crate::error::BusError;
use crate::topology::BucketSpec;
use crate::Bus;

/// A value read from KV with the revision it had.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The decoded value.
    pub value: T,
    /// The entry's revision (for compare-and-set).
    pub revision: u64,
}

/// What an update closure decided.
#[derive(Debug)]
pub enum Change<T, R> {
    /// Store the new value and return `R`.
    Put(T, R),
    /// Delete the key and return `R`.
    Delete(R),
    /// Leave the entry as it is and return `R`.
    Keep(R),
}

/// A KV bucket of protobuf values of type `T`.
pub struct Kv<T> {
    store: kv::Store,
    bucket: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Kv<T> {
    fn clone(&self) -> Self {
        Kv {
            store: self.store.clone(),
            bucket: self.bucket,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Kv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").field("bucket", &self.bucket).finish()
    }
}

/// How many compare-and-set conflicts an update tolerates before giving up.
const MAX_CAS_ATTEMPTS: usize = 50;

impl<T: prost::Message + Default> Kv<T> {
    fn err(&self, key: &str, reason: impl ToString) -> BusError {
        BusError::Kv {
            bucket: self.bucket.to_owned(),
            key: key.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Reads a key; `None` when absent or deleted.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>, BusError> {
        let entry = self.store.entry(key).await.map_err(|e| self.err(key, e))?;
        match entry {
            Some(e) if matches!(e.operation, kv::Operation::Put) => {
                let value = T::decode(e.value.as_ref()).map_err(|d| BusError::Decode {
                    what: format!("{}/{key}", self.bucket),
                    reason: d.to_string(),
                })?;
                Ok(Some(Versioned {
                    value,
                    revision: e.revision,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Writes a key unconditionally; returns the new revision.
    pub async fn put(&self, key: &str, value: &T) -> Result<u64, BusError> {
        self.store
            .put(key, Bytes::from(value.encode_to_vec()))
            .await
            .map_err(|e| self.err(key, e))
    }

    /// Creates a key only if it does not exist; `Ok(None)` when it already exists.
    pub async fn create(&self, key: &str, value: &T) -> Result<Option<u64>, BusError> {
        match self
            .store
            .create(key, Bytes::from(value.encode_to_vec()))
            .await
        {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if matches!(e.kind(), kv::CreateErrorKind::AlreadyExists) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Deletes a key.
    pub async fn delete(&self, key: &str) -> Result<(), BusError> {
        self.store.delete(key).await.map_err(|e| self.err(key, e))
    }

    /// Lists every key currently in the bucket.
    pub async fn keys(&self) -> Result<Vec<String>, BusError> {
        use futures::TryStreamExt;
        let keys = self.store.keys().await.map_err(|e| self.err("*", e))?;
        keys.try_collect().await.map_err(|e| self.err("*", e))
    }

    /// Reads the entry, lets `f` decide, and writes with compare-and-set on the revision read.
    /// On a conflict (someone else wrote in between) it re-reads and calls `f` again, so `f` must be a
    /// pure function of the current value.
    pub async fn update<R, F>(&self, key: &str, f: F) -> Result<R, BusError>
    where
        F: FnMut(Option<&T>) -> Change<T, R>,
    {
        let current = self.get(key).await?;
        Ok(self.update_from(key, current, f).await?.0)
    }

    /// Like [`update`](Self::update), starting from `current`, the entry as the caller last read it
    /// (`None`: absent), which saves a read when it is still current; a stale `current` costs one
    /// conflict and a re-read. Also returns the entry as it is after the update (`None` when absent).
    pub async fn update_from<R, F>(
        &self,
        key: &str,
        mut current: Option<Versioned<T>>,
        mut f: F,
    ) -> Result<(R, Option<Versioned<T>>), BusError>
    where
        F: FnMut(Option<&T>) -> Change<T, R>,
    {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                current = self.get(key).await?;
            }
            let revision = current.as_ref().map(|v| v.revision);
            let written = match f(current.as_ref().map(|v| &v.value)) {
                Change::Keep(r) => return Ok((r, current)),
                Change::Put(new, r) => {
                    let bytes = Bytes::from(new.encode_to_vec());
                    let res = match revision {
                        Some(rev) => self.store.update(key, bytes, rev).await,
                        None => self.store.create(key, bytes).await.map_err(|e| {
                            if matches!(e.kind(), kv::CreateErrorKind::AlreadyExists) {
                                kv::UpdateError::new(kv::UpdateErrorKind::WrongLastRevision)
                            } else {
                                kv::UpdateError::with_source(kv::UpdateErrorKind::Other, e)
                            }
                        }),
                    };
                    res.map(|revision| {
                        (
                            r,
                            Some(Versioned {
                                value: new,
                                revision,
                            }),
                        )
                    })
                }
                Change::Delete(r) => match revision {
                    Some(rev) => self
                        .store
                        .delete_expect_revision(key, Some(rev))
                        .await
                        // A stale revision comes back as `WrongLastRevision`, other failures as
                        // themselves (async-nats's delete error is its update error).
                        .map(|_| (r, None)),
                    None => return Ok((r, None)),
                },
            };
            match written {
                Ok(done) => return Ok(done),
                Err(e) if matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision) => {
                    tracing::debug!(
                        bucket = self.bucket,
                        key,
                        attempt,
                        "KV compare-and-set conflict; retrying."
                    );
                    // The first conflict may only mean the caller's entry was stale: re-read at once.
                    if attempt > 0 {
                        let jitter = rand::random::<u64>() % 5;
                        tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
                    }
                }
                Err(e) => return Err(self.err(key, e)),
            }
        }
        Err(self.err(key, "too many compare-and-set conflicts"))
    }
}

impl Bus {
    /// Opens a declared KV bucket.
    pub async fn kv<T: prost::Message + Default>(
        &self,
        spec: BucketSpec,
    ) -> Result<Kv<T>, BusError> {
        let store = self
            .jetstream()
            .get_key_value(spec.name)
            .await
            .map_err(|e| BusError::Kv {
                bucket: spec.name.to_owned(),
                key: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Kv {
            store,
            bucket: spec.name,
            _t: PhantomData,
        })
    }
}
