//! The storage authority on every backend available: SQLite always, PostgreSQL when
//! `CERTMINT_TEST_DATABASE_URL` names a server (and then it must be reachable).

use certmint_store::{
    AuditEntry, Error, GENESIS_HASH, NewUser, PageRequest, Store, UserFilter, UserUpdate,
    chain_hash,
};
use time::OffsetDateTime;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn backends() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut stores = vec![(Store::connect(&url, 8).await.expect("sqlite"), Some(dir))];
    if let Ok(admin) = std::env::var("CERTMINT_TEST_DATABASE_URL") {
        let url = certmint_store::testing::fresh_postgres_database(&admin)
            .await
            .expect("CERTMINT_TEST_DATABASE_URL is set, so PostgreSQL must be reachable");
        stores.push((Store::connect(&url, 8).await.expect("postgres"), None));
    }
    for (store, _) in &stores {
        store.migrate().await.expect("migrations");
        store.migrate().await.expect("migrations run twice");
        store.ping().await.expect("ping");
    }
    stores
}

fn entry(action: &str) -> AuditEntry {
    AuditEntry {
        at: OffsetDateTime::now_utc(),
        username: Some("tester".into()),
        action: action.into(),
        resource_type: Some("user".into()),
        resource_id: Some("1".into()),
        details: Some("details".into()),
        ip_address: None,
        user_agent: None,
        success: true,
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.test")),
        full_name: None,
        role: "viewer".into(),
        password_hash: "$argon2id$…".into(),
    }
}

#[tokio::test]
async fn users_are_unique_filterable_and_updatable() -> TestResult {
    for (store, _dir) in backends().await {
        let now = OffsetDateTime::now_utc();
        let mut tx = store.begin_write().await?;
        tx.insert_user(&user("ann"), now).await?;
        tx.insert_user(&user("ben"), now).await?;
        assert!(matches!(
            tx.insert_user(&user("ann"), now).await,
            Err(Error::Conflict)
        ));
        drop(tx);
        assert_eq!(
            store.user_count().await?,
            0,
            "a dropped transaction writes nothing"
        );

        let mut tx = store.begin_write().await?;
        let id2 = tx.insert_user(&user("ann"), now).await?;
        tx.insert_user(&user("ben"), now).await?;
        let update = UserUpdate {
            email: Some(None),
            role: Some("admin".into()),
            ..UserUpdate::default()
        };
        assert!(tx.update_user(id2, &update, now).await?);
        tx.commit().await?;
        let ann = store.user_by_name("ann").await?.ok_or("ann")?;
        assert_eq!((ann.email, ann.role.as_str()), (None, "admin"));
        let filter = UserFilter {
            search: Some("BEN@".into()),
            ..UserFilter::default()
        };
        let page = store
            .users(
                &filter,
                PageRequest {
                    page: 1,
                    per_page: 10,
                },
            )
            .await?;
        assert_eq!((page.total, page.items[0].username.as_str()), (1, "ben"));
        let page = store
            .users(
                &UserFilter::default(),
                PageRequest {
                    page: 2,
                    per_page: 1,
                },
            )
            .await?;
        assert_eq!((page.total, page.items.len()), (2, 1));
    }
    Ok(())
}

#[tokio::test]
async fn audit_records_chain_without_gaps_and_roll_back_with_their_change() -> TestResult {
    for (store, _dir) in backends().await {
        let mut tx = store.begin_write().await?;
        assert_eq!(tx.audit(&entry("first")).await?, 1);
        assert_eq!(tx.audit(&entry("second")).await?, 2);
        tx.commit().await?;
        let mut tx = store.begin_write().await?;
        assert_eq!(tx.audit(&entry("rolled back")).await?, 3);
        drop(tx);
        let mut tx = store.begin_write().await?;
        assert_eq!(
            tx.audit(&entry("third")).await?,
            3,
            "the rolled-back id is reused: no gap"
        );
        tx.commit().await?;
        let records = store.audit_chain_batch(0, 100, 100).await?;
        assert_eq!(
            records
                .iter()
                .map(|r| r.entry.action.as_str())
                .collect::<Vec<_>>(),
            ["first", "second", "third"]
        );
        let mut prev = GENESIS_HASH.to_owned();
        for r in &records {
            assert_eq!(r.prev_hash, prev);
            assert_eq!(r.hash, chain_hash(r.id, &r.entry, &r.prev_hash));
            prev = r.hash.clone();
        }
        assert_eq!(store.audit_anchor().await?.last_hash, prev);
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_extend_one_chain() -> TestResult {
    for (store, _dir) in backends().await {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin_write().await?;
                    tx.insert_user(&user(&format!("u{i}")), OffsetDateTime::now_utc())
                        .await?;
                    tx.audit(&entry("user_created")).await?;
                    tx.commit().await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let records = store.audit_chain_batch(0, 1000, 1000).await?;
        assert_eq!(
            records.iter().map(|r| r.id).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        assert_eq!(store.user_count().await?, 20);
    }
    Ok(())
}

#[tokio::test]
async fn retention_moves_the_anchor_past_removed_records() -> TestResult {
    for (store, _dir) in backends().await {
        let mut tx = store.begin_write().await?;
        for action in ["a", "b", "c"] {
            tx.audit(&entry(action)).await?;
        }
        tx.commit().await?;
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let mut tx = store.begin_write().await?;
        assert_eq!(tx.audit_remove_before(later).await?, 3);
        tx.audit(&AuditEntry {
            at: later,
            ..entry("cleanup")
        })
        .await?;
        tx.commit().await?;
        let anchor = store.audit_anchor().await?;
        let records = store.audit_chain_batch(0, 100, 100).await?;
        assert_eq!(records.len(), 1);
        assert_eq!((anchor.first_id, records[0].id), (4, 4));
        assert_eq!(records[0].prev_hash, anchor.first_prev_hash);
    }
    Ok(())
}
