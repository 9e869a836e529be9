//! The attachments object store: durable copies of user files.

use async_nats::jetstream::object_store;
use tokio::io::AsyncReadExt;

use crate::error::BusError;
use crate::topology::OBJECT_ATTACHMENTS;
use crate::Bus;

/// The attachments object store.
#[derive(Clone)]
pub struct Objects {
    store: object_store::ObjectStore,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Objects")
    }
}

fn err(name: &str, e: impl ToString) -> BusError {
    BusError::Object {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

impl Objects {
    /// Stores `data` under `name` (replacing any previous object of that name).
    pub async fn put(&self, name: &str, data: &[u8]) -> Result<(), BusError> {
        let mut reader = data;
        self.store
            .put(name, &mut reader)
            .await
            .map(|_| ())
            .map_err(|e| err(name, e))
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, BusError> {
        match self.store.get(name).await {
            Ok(mut obj) => {
                let mut buf = Vec::new();
                obj.read_to_end(&mut buf).await.map_err(|e| err(name, e))?;
                Ok(Some(buf))
            }
            Err(e) if matches!(e.kind(), object_store::GetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(err(name, e)),
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, name: &str) -> Result<bool, BusError> {
        match self.store.info(name).await {
            Ok(info) => Ok(!info.deleted),
            Err(e) if matches!(e.kind(), object_store::InfoErrorKind::NotFound) => Ok(false),
            Err(e) => Err(err(name, e)),
        }
    }
}

impl Bus {
    /// Opens the attachments object store.
    pub async fn attachments(&self) -> Result<Objects, BusError> {
        let store = self
            .jetstream()
            .get_object_store(OBJECT_ATTACHMENTS)
            .await
            .map_err(|e| err(OBJECT_ATTACHMENTS, e))?;
        Ok(Objects { store })
    }
}
