//! Unit tests for the files store: names, uploads, quotas and listings.

use super::*;

#[test]
fn names_are_reduced_or_refused_with_a_reason() {
    let reduced: [(&[u8], &str); 9] = [
        (b"a.jpg", "a.jpg"),
        (b"../x", "x"),
        (b"/etc/passwd", "passwd"),
        (b"a/b", "b"),
        (b"..\\x", "x"),
        (b".bashrc", "bashrc"),
        (b"  spaced name.txt ", "spaced name.txt"),
        ("中文.txt".as_bytes(), "中文.txt"),
        (b"...hidden", "hidden"),
    ];
    for (raw, want) in reduced {
        assert_eq!(safe_name(raw).unwrap(), want, "{raw:?}");
    }
    let long = "y".repeat(MAX_NAME_LEN + 1);
    let refused: [&[u8]; 12] = [
        b"",
        b".",
        b"..",
        b"a/",
        b"a\0../x",
        b"\xff\xfe",
        b"tab\there",
        b"new\nline",
        b"esc\x1b[2J",
        "c1\u{85}".as_bytes(),
        b"   ",
        long.as_bytes(),
    ];
    for raw in refused {
        assert!(
            matches!(safe_name(raw), Err(StoreError::BadName(_))),
            "{raw:?}"
        );
    }
}

#[test]
fn variants_keep_the_extension() {
    assert_eq!(variant("a.jpg", 0), "a.jpg");
    assert_eq!(variant("a.jpg", 2), "a-2.jpg");
    assert_eq!(variant("archive.tar.gz", 1), "archive.tar-1.gz");
    assert_eq!(variant("README", 1), "README-1");
}

async fn upload(store: &Store, name: &str, data: &[u8]) -> Result<FileInfo, StoreError> {
    let mut up = store.begin(name, data.len() as u64)?;
    for piece in data.chunks(CHUNK) {
        let mut buf = up.buffer().await;
        buf.extend_from_slice(piece);
        up.push(buf).await?;
    }
    up.commit().await
}

#[tokio::test]
async fn uploads_land_whole_under_free_names_and_abandoned_ones_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..CHUNK * 3 + 7).map(|i| i as u8).collect();
    let first = upload(&store, "a.bin", &data).await.unwrap();
    assert_eq!(first.name, "a.bin");
    assert_eq!(first.size, data.len() as u64);
    assert_eq!(first.sha256, hex(&Sha256::digest(&data)));
    let second = upload(&store, "a.bin", b"other").await.unwrap();
    assert_eq!(second.name, "a-1.bin", "never replaced");
    assert_eq!(std::fs::read(store.dir().join("a.bin")).unwrap(), data);

    // Abandoned midway, short, or long: nothing under any name.
    let mut up = store.begin("gone.bin", 10).unwrap();
    let mut buf = up.buffer().await;
    buf.extend_from_slice(b"12345");
    up.push(buf).await.unwrap();
    drop(up);
    let short = store.begin("short.bin", 10).unwrap();
    assert!(matches!(
        short.commit().await,
        Err(StoreError::SizeMismatch { .. })
    ));
    let mut long = store.begin("long.bin", 1).unwrap();
    let mut buf = long.buffer().await;
    buf.extend_from_slice(b"too long");
    assert!(matches!(
        long.push(buf).await,
        Err(StoreError::SizeMismatch { .. })
    ));
    drop(long);
    let names: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["a-1.bin", "a.bin"]);
    let on_disk = std::fs::read_dir(store.dir()).unwrap().count();
    assert_eq!(on_disk, 2, "no temporaries left");
}

#[tokio::test]
async fn symlinks_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let outside = dir.path().join("secret");
    std::fs::write(&outside, "do not read").unwrap();
    std::os::unix::fs::symlink(&outside, store.dir().join("link.txt")).unwrap();
    assert!(matches!(
        store.open_file("link.txt").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store.list().await.unwrap().is_empty(),
        "links are not listed"
    );
    let stored = upload(&store, "link.txt", b"new").await.unwrap();
    assert_eq!(stored.name, "link-1.txt");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "do not read");
    assert!(matches!(
        store.open_file("../secret").await,
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn stale_temporaries_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = super::dir(dir.path());
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join(".upload-deadbeef"), "half").unwrap();
    std::fs::write(files.join("kept.txt"), "whole").unwrap();
    Store::open(dir.path()).unwrap();
    let left: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["kept.txt"]);
}

/// A folder opened again while an upload into it runs (the new process of
/// an upgrade, a files instance restarted by a reload) keeps that upload's
/// temporary; once the upload is gone, the next open sweeps what is left.
#[tokio::test]
async fn a_running_uploads_temporary_survives_another_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let running = store.begin("big.bin", 10).unwrap();
    let tmp = || {
        std::fs::read_dir(store.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".upload-")
            })
            .count()
    };
    assert_eq!(tmp(), 1);
    Store::open(dir.path()).unwrap();
    assert_eq!(tmp(), 1, "the running upload's temporary is kept");
    // A stale one beside it (its process gone: no lock) is still swept.
    std::fs::write(store.dir().join(".upload-deadbeef"), "half").unwrap();
    Store::open(dir.path()).unwrap();
    assert_eq!(tmp(), 1);
    drop(running);
    assert_eq!(tmp(), 0, "an abandoned upload removes its own");
}

#[tokio::test]
async fn space_is_checked_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store.begin("huge", u64::MAX / 2).err().unwrap();
    assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
    assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 0);
    assert_eq!(
        store.inner.claimed.load(Ordering::SeqCst),
        0,
        "claim returned"
    );
}
