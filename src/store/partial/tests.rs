//! The partial area on a real folder: create, write parts, resume after a
//! reopen, complete under the name, refusals.

use super::create::Taking;
use super::*;
use crate::store::Store;

fn new<'a>(owner: &'a str, name: &'a str, length: u64) -> New<'a> {
    New {
        owner,
        name,
        length,
        metadata: "",
        sha256: None,
        max_size: 1 << 30,
        max_per_owner: 2,
        ttl: Duration::from_secs(60),
    }
}

async fn write(
    p: &Partials,
    partial: &Partial,
    offset: u64,
    data: &[u8],
    whole: bool,
) -> Result<u64, PartialError> {
    let mut held = partial.lock().await;
    let mut patch = p.patch(partial, &mut held, offset, None)?;
    patch.push(Bytes::copy_from_slice(data)).await?;
    p.end_patch(&mut held, patch, whole, Duration::from_secs(60))
        .await
}

use bytes::Bytes;

#[tokio::test]
async fn parts_resume_after_a_reopen_and_complete_under_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let id;
    {
        let p = Partials::open(&store).unwrap();
        let up = p
            .create(new("ann", "../a.bin", data.len() as u64))
            .await
            .unwrap();
        id = up.id().to_owned();
        assert!(is_id(&id));
        assert_eq!(
            write(&p, &up, 0, &data[..40_000], false).await.unwrap(),
            40_000
        );
        // Wrong offset: refused, nothing written.
        assert!(matches!(
            write(&p, &up, 10, &data[10..20], true).await,
            Err(PartialError::WrongOffset {
                held: 40_000,
                asked: 10
            })
        ));
        assert!(p.get(&id, "bob").is_none(), "another owner sees nothing");
    }
    // A reopen (a restart): the same upload, the same offset.
    drop(store);
    lock(areas()).clear();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    let up = p.get(&id, "ann").expect("kept across the reopen");
    assert_eq!(up.lock().await.offset(), 40_000);
    assert!(up.lock().await.cut);
    assert!(matches!(
        write(&p, &up, 40_000, &[0u8; 60_001], true).await,
        Err(PartialError::PastEnd { .. })
    ));
    assert_eq!(
        write(&p, &up, 40_000, &data[40_000..], true).await.unwrap(),
        100_000
    );
    let info = {
        let mut held = up.lock().await;
        p.complete(&up, &mut held).await.unwrap()
    };
    assert_eq!(info.name, "a.bin");
    assert_eq!(
        info.sha256,
        hex(&sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&data)
        ))
    );
    assert_eq!(std::fs::read(dir.path().join("files/a.bin")).unwrap(), data);
    assert!(p.get(&id, "ann").is_none());
    assert_eq!(
        std::fs::read_dir(dir.path().join("files/.partial"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn limits_and_a_wrong_declared_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    assert!(matches!(
        p.create(New {
            max_size: 10,
            ..new("ann", "x", 11)
        })
        .await,
        Err(PartialError::Store(StoreError::TooLarge { .. }))
    ));
    assert!(matches!(
        p.create(New {
            max_size: u64::MAX,
            ..new("ann", "x", u64::MAX / 2)
        })
        .await,
        Err(PartialError::Store(StoreError::NoSpace { .. }))
    ));
    assert!(matches!(
        p.create(new("ann", "..", 1)).await,
        Err(PartialError::Store(StoreError::BadName(_)))
    ));
    let a = p
        .create(New {
            sha256: Some("00".repeat(32)),
            ..new("ann", "x", 3)
        })
        .await
        .unwrap();
    let _b = p.create(new("ann", "y", 3)).await.unwrap();
    assert!(matches!(
        p.create(new("ann", "z", 3)).await,
        Err(PartialError::TooMany(2))
    ));
    p.create(new("bob", "z", 3))
        .await
        .expect("another account has its own count");
    write(&p, &a, 0, b"abc", true).await.unwrap();
    let mut held = a.lock().await;
    assert!(matches!(
        p.complete(&a, &mut held).await,
        Err(PartialError::HashMismatch { .. })
    ));
    assert!(!dir.path().join("files/x").exists());
}

/// A blocking pool of one thread: a part that kept a thread while its body
/// trickled in would leave none for the others (a writer thread per part
/// held it until the part ended). Three parts fed 1 KiB at a time,
/// interleaved, all end, and hold what they were sent.
#[test]
fn parts_fed_in_small_pieces_hold_no_blocking_thread() {
    const PIECE: usize = 1024;
    const PIECES: usize = 600; // more than two gathered chunks
    let rt = crate::store::stage::one_blocking_thread();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    let data: Vec<u8> = (0..PIECE * PIECES).map(|i| (i % 251) as u8).collect();
    let all = async {
        let mut ups = Vec::new();
        for owner in ["ann", "bob", "cat"] {
            ups.push(
                p.create(new(owner, "t.bin", data.len() as u64))
                    .await
                    .unwrap(),
            );
        }
        let mut held = Vec::new();
        for up in &ups {
            held.push(up.lock().await);
        }
        let mut parts: Vec<_> = ups
            .iter()
            .zip(&mut held)
            .map(|(up, h)| p.patch(up, h, 0, None).unwrap())
            .collect();
        for piece in data.chunks(PIECE) {
            for part in &mut parts {
                part.push(Bytes::copy_from_slice(piece)).await.unwrap();
            }
        }
        for (part, h) in parts.into_iter().zip(&mut held) {
            let end = p.end_patch(h, part, true, Duration::from_secs(60)).await;
            assert_eq!(end.unwrap(), data.len() as u64);
        }
        for (up, h) in ups.iter().zip(&mut held) {
            let info = p.complete(up, h).await.unwrap();
            let stored = std::fs::read(dir.path().join("files").join(&info.name)).unwrap();
            assert!(stored == data, "{} differs", info.name);
        }
    };
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), all).await })
        .expect("every part ended with one blocking thread");
}

/// A files instance with a folder of its own: the dashboard opens the
/// partial area first, the instance (and each restart of it) its store
/// after. Both must count the same claims, or plain uploads would not see
/// the space resumable ones hold.
#[tokio::test]
async fn the_dashboard_and_the_files_instance_count_the_same_claims() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("own");
    let p = Partials::open_folder(&folder).unwrap();
    let service = Store::open_folder(&folder).unwrap();
    let _up = p.create(new("ann", "x.bin", 1000)).await.unwrap();
    let claimed = |s: &Store| s.inner.claimed.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(claimed(&service), 1000);
    let restarted = Store::open_folder(&folder).unwrap();
    assert_eq!(claimed(&restarted), 1000);
}

/// An account's creations at once: no more succeed than its cap allows
/// (each one counted the table before any had been added to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creations_at_once_do_not_pass_the_cap() {
    const AT_ONCE: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(AT_ONCE));
    let all: Vec<_> = (0..AT_ONCE)
        .map(|i| {
            let (p, start) = (p.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                p.create(new("ann", &format!("c{i}.bin"), 10)).await.is_ok()
            })
        })
        .collect();
    let mut made = 0;
    for one in all {
        made += usize::from(one.await.unwrap());
    }
    assert_eq!(made, 2, "created with a cap of 2");
    assert!(matches!(
        p.create(new("ann", "late.bin", 10)).await,
        Err(PartialError::TooMany(2))
    ));
}

/// A creator gone before its upload's files were made (a client that
/// left) leaves nothing: the job finds nobody to hand the upload to.
#[test]
fn a_creation_whose_creator_left_leaves_nothing() {
    let rt = crate::store::stage::one_blocking_thread();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    rt.block_on(async {
        // The one blocking thread busy: the creation's job waits its turn.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let busy = tokio::task::spawn_blocking(move || wait.recv());
        let mut creating = Box::pin(p.create(new("ann", "left.bin", 10)));
        use futures_util::FutureExt;
        assert!(creating.as_mut().now_or_never().is_none());
        drop(creating);
        go.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let claimed = || {
            store
                .inner
                .claimed
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while claimed() != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the orphan's space goes back");
        // The job has run (the claim went with it): nothing is listed or left.
        let job_done = tokio::task::spawn_blocking(|| ()).await;
        job_done.unwrap();
        assert!(
            p.list().await.is_empty(),
            "an upload nobody holds is listed"
        );
        let left = std::fs::read_dir(&p.area.dir).map_or(0, |d| d.count());
        assert_eq!(left, 0, "files left");
    });
}

/// The creator's end dropped after the job handed the upload over, before
/// the creator took it: the upload goes with it.
#[tokio::test]
async fn an_upload_handed_over_to_a_creator_that_left_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    let made = p.create(new("ann", "left.bin", 10)).await.unwrap();
    let files = std::fs::read_dir(&p.area.dir).unwrap().count();
    assert_eq!(files, 2, "its data and its meta");
    let (hand, made_rx) = tokio::sync::oneshot::channel();
    hand.send(Ok(Arc::clone(&made))).map_err(|_| ()).unwrap();
    // Its lock held (as a listing would): the removal waits for it.
    let listing = made.lock().await;
    drop(Taking {
        made: Some(made_rx),
        partials: p.clone(),
    });
    drop(listing);
    let folder = p.area.dir.clone();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while std::fs::read_dir(&folder).unwrap().count() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("its files go");
    assert!(
        p.list().await.is_empty(),
        "an upload nobody holds is listed"
    );
    let claimed = store
        .inner
        .claimed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(claimed, 0, "bytes still claimed");
    // Not held: removed at once.
    let again = p.create(new("ann", "again.bin", 10)).await.unwrap();
    let (hand, made_rx) = tokio::sync::oneshot::channel();
    hand.send(Ok(again)).map_err(|_| ()).unwrap();
    drop(Taking {
        made: Some(made_rx),
        partials: p.clone(),
    });
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0, "files left");
}

/// A meta's temporary left by a crash mid-write is removed at the next
/// start; the uploads beside it stay.
#[tokio::test]
async fn a_meta_temporary_left_by_a_crash_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = Partials::open(&store).unwrap();
    let kept = p.create(new("ann", "kept.bin", 10)).await.unwrap();
    let folder = p.area.dir.clone();
    let tmp = folder.join(format!("{}.json.tmp4242", "0".repeat(32)));
    std::fs::write(&tmp, b"{").unwrap();
    drop((kept, p, store));
    // A reopen (a restart), even if a job's last handle on the area is
    // still being dropped.
    lock(areas()).clear();
    let store = Store::open(dir.path()).unwrap();
    let again = Partials::open(&store).unwrap();
    assert!(!tmp.exists(), "the temporary is still there");
    assert_eq!(again.list().await.len(), 1, "the upload beside it");
}
