//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use case_service::store::{DbOptions, Store};
use sqlx::Connection;

/// The PostgreSQL server tests use: `DATABASE_URL` when it is a postgres URL, else the local one.
pub fn pg_admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => u,
        _ => "postgres://postgres@127.0.0.1:5432/test".to_owned(),
    }
}

/// A database that disappears when dropped.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cases.sqlite").display());
        let store = Store::connect(&url, &DbOptions::default()).await.unwrap();
        Self {
            url,
            store,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    /// A new database on the PostgreSQL server, or `None` (with a loud message) when no
    /// server is reachable.
    pub async fn postgres() -> Option<Self> {
        let admin = pg_admin_url();
        let conn =
            tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&admin)).await;
        let mut conn = match conn {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                eprintln!("\n*** skipped: no PostgreSQL at {admin}: {e} ***\n");
                return None;
            }
            Err(_) => {
                eprintln!("\n*** skipped: no PostgreSQL at {admin}: connect timed out ***\n");
                return None;
            }
        };
        let name = format!("case_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        let url = url.to_string();
        let store = Store::connect(&url, &DbOptions::default()).await.unwrap();
        Some(Self {
            url,
            store,
            _dir: None,
            pg_name: Some(name),
        })
    }

    /// Another store on the same database (a restarted process).
    pub async fn reopen(&self) -> Store {
        Store::connect(&self.url, &DbOptions::default())
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Runs the same async test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$name(&db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = $crate::common::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                }
            }
        )+
    };
}
