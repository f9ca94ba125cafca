//! Unit tests of the embedded store's own behaviour (the shared suite is
//! `control/tests/store_suite.rs`).

use super::*;
use crate::store::ManualClock;

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tweed-embedded-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.redb")
}

#[tokio::test]
async fn revisions_increase_and_survive_reopen() {
    let path = temp_path("rev");
    let store = EmbeddedStore::open(&path).expect("open");
    let r1 = store.put("/a", b"1".to_vec(), None).await.expect("put");
    let r2 = store.put("/b", b"2".to_vec(), None).await.expect("put");
    assert!(r2 > r1);
    assert!(store.delete("/a").await.expect("delete"));
    drop(store);
    let store = EmbeddedStore::open(&path).expect("reopen");
    let r4 = store.put("/c", b"3".to_vec(), None).await.expect("put");
    // The delete took r2 + 1.
    assert_eq!(r4, Revision(r2.0 + 2));
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[tokio::test]
async fn failed_conditional_writes_do_not_advance_the_revision() {
    let path = temp_path("noop");
    let store = EmbeddedStore::open(&path).expect("open");
    let r1 = store.put("/a", b"1".to_vec(), None).await.expect("put");
    assert_eq!(
        store.create("/a", vec![], None).await.expect("create"),
        None
    );
    assert!(
        !store
            .delete_if("/a", Revision(99))
            .await
            .expect("delete_if")
    );
    assert!(!store.delete("/missing").await.expect("delete"));
    let r2 = store.put("/b", b"2".to_vec(), None).await.expect("put");
    assert_eq!(r2, Revision(r1.0 + 1));
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[tokio::test]
async fn an_expired_lease_is_reaped_on_access_without_a_sweeper() {
    let path = temp_path("lazy");
    let clock = Arc::new(ManualClock::new());
    let store = EmbeddedStore::open_with_clock(&path, clock.clone()).expect("open");
    let lease = store.grant(Duration::from_secs(5)).await.expect("grant");
    store.put("/l", vec![1], Some(lease)).await.expect("put");
    clock.advance(Duration::from_secs(4));
    assert!(store.get("/l").await.expect("get").is_some());
    clock.advance(Duration::from_secs(1));
    assert!(store.get("/l").await.expect("get").is_none());
    let err = store.keep_alive(lease).await.expect_err("expired");
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[tokio::test]
async fn the_sweeper_reaps_and_stops_with_the_store() {
    let path = temp_path("sweep");
    let clock = Arc::new(ManualClock::new());
    let store = EmbeddedStore::open_with_clock(&path, clock.clone()).expect("open");
    let lease = store.grant(Duration::from_secs(1)).await.expect("grant");
    store.put("/s/k", vec![1], Some(lease)).await.expect("put");
    let mut watch = store.watch("/s/").await.expect("watch");
    let sweeper = store.spawn_sweeper(Duration::from_millis(10));
    clock.advance(Duration::from_secs(2));
    // The sweeper, not an access, produces the Delete.
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("sweep within 5 s")
        .expect("stream open")
        .expect("event");
    assert!(matches!(event, WatchEvent::Delete { ref key, .. } if key == "/s/k"));
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), sweeper)
        .await
        .expect("sweeper ends")
        .expect("sweeper did not panic");
    // The store is gone, so is the watch.
    assert!(watch.next().await.is_none());
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[tokio::test]
async fn moving_a_key_to_another_lease_detaches_it_from_the_first() {
    let path = temp_path("move");
    let clock = Arc::new(ManualClock::new());
    let store = EmbeddedStore::open_with_clock(&path, clock.clone()).expect("open");
    let short = store.grant(Duration::from_secs(1)).await.expect("grant");
    let long = store.grant(Duration::from_secs(10)).await.expect("grant");
    store.put("/k", vec![1], Some(short)).await.expect("put");
    store.put("/k", vec![2], Some(long)).await.expect("put");
    clock.advance(Duration::from_secs(2));
    let kv = store.get("/k").await.expect("get").expect("still there");
    assert_eq!(kv.value, vec![2]);
    store.put("/k", vec![3], None).await.expect("put");
    store.revoke(long).await.expect("revoke");
    assert!(store.get("/k").await.expect("get").is_some());
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[tokio::test]
async fn a_lagging_watcher_gets_watch_lost_and_its_stream_ends() {
    let (tx, rx) = broadcast::channel(2);
    let mut watch = watch_stream(rx, "/p/".into());
    for i in 0..5 {
        let event = WatchEvent::Delete {
            key: format!("/p/{i}"),
            revision: Revision(i),
        };
        tx.send(event).expect("a receiver exists");
    }
    let lost = watch.next().await.expect("an item");
    assert!(
        matches!(lost, Err(StoreError::WatchLost { ref prefix, .. }) if prefix == "/p/"),
        "{lost:?}"
    );
    assert!(
        watch.next().await.is_none(),
        "the stream ends after the loss"
    );
}
