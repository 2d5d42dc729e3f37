//! Both document stores against real storage: a bucket on a loopback AWS-API server (moto) and
//! files in a temporary folder, in the platform's `{user}/{bot}/documents/{file}` layout.

use ragshift_documents::{DirDocuments, DocumentError, DocumentStore, S3Documents};
use ragshift_model::BotKey;
use ragshift_testkit::{shared_moto, unique_name};

async fn sdk() -> aws_config::SdkConfig {
    shared_moto().sdk_config().await
}

/// Where the platform keeps bot `k`'s uploaded document `name`.
fn document_key(k: &BotKey, name: &str) -> String {
    format!("{}/{}/documents/{name}", k.user_id, k.bot_id)
}

fn key() -> BotKey {
    BotKey::new("user-1", "01HZX5Q8J6N2W4V7T9R3K1M0PB")
}

#[tokio::test]
async fn s3_lists_sizes_without_downloading_and_gets_bytes() {
    let sdk = sdk().await;
    let k = key();
    let files: [(&str, &[u8]); 3] = [
        ("manual.pdf", &[b'%'; 1234]),
        ("notes with spaces.txt", b"hello world"),
        ("empty.md", b""),
    ];
    let mut objects: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(name, body)| (document_key(&k, name), body.to_vec()))
        .collect();
    // Another bot's file under a similar prefix must not show up.
    objects.push((
        format!("{}/{}X/documents/other.txt", k.user_id, k.bot_id),
        b"x".to_vec(),
    ));
    let s3 = ragshift_testkit::s3::client(&sdk);
    let bucket = ragshift_testkit::s3::bucket_with(&s3, "docs", objects).await;

    let store = S3Documents::new(&sdk, &bucket);
    store.check().await.expect("the bucket exists");
    let mut listed = store.list(&k).await.expect("list");
    listed.sort_by(|a, b| a.filename.cmp(&b.filename));
    let names: Vec<(&str, u64)> = listed
        .iter()
        .map(|d| (d.filename.as_str(), d.bytes))
        .collect();
    assert_eq!(
        names,
        vec![
            ("empty.md", 0),
            ("manual.pdf", 1234),
            ("notes with spaces.txt", 11)
        ]
    );
    assert_eq!(
        listed[1].source_uri,
        format!("s3://{bucket}/user-1/01HZX5Q8J6N2W4V7T9R3K1M0PB/documents/manual.pdf")
    );

    let docs = store
        .bot_documents(
            &k,
            &[
                "manual.pdf".into(),
                "gone.docx".into(),
                "notes with spaces.txt".into(),
            ],
        )
        .await
        .expect("bot documents");
    assert_eq!(docs.bytes(), 1245);
    assert_eq!(docs.missing, vec!["gone.docx".to_owned()]);
    assert_eq!(docs.found[0].filename, "manual.pdf", "registry order kept");

    let doc = store.get(&k, "notes with spaces.txt").await.expect("get");
    assert_eq!(doc.bytes, b"hello world");
    assert_eq!(
        doc.source_uri,
        format!("s3://{bucket}/user-1/01HZX5Q8J6N2W4V7T9R3K1M0PB/documents/notes with spaces.txt")
    );
    match store.get(&k, "gone.docx").await {
        Err(DocumentError::Missing { filename, .. }) => assert_eq!(filename, "gone.docx"),
        other => panic!("expected a missing file: {other:?}"),
    }
    assert!(store
        .list(&BotKey::new("nobody", "nothing"))
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_is_fatal_and_named() {
    let sdk = sdk().await;
    let bucket = unique_name("nosuchbucket");
    let store = S3Documents::new(&sdk, &bucket);
    let err = store.check().await.expect_err("no such bucket");
    assert!(err.is_fatal());
    let text = err.to_string();
    assert!(
        text.contains(&bucket) && text.contains("--documents-bucket"),
        "{text}"
    );
    let err = store.list(&key()).await.expect_err("no such bucket");
    assert!(err.is_fatal(), "{err}");
}

#[tokio::test]
async fn a_directory_with_the_bucket_layout() {
    let root = tempfile::tempdir().expect("tempdir");
    let k = key();
    let dir = root
        .path()
        .join("user-1/01HZX5Q8J6N2W4V7T9R3K1M0PB/documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("a.txt"), "twelve bytes").expect("write");
    std::fs::write(dir.join("b.csv"), "x,y\n1,2\n").expect("write");
    std::fs::create_dir(dir.join("subfolder")).expect("mkdir");

    let store = DirDocuments::new(root.path());
    store.check().await.expect("exists");
    let listed = store.list(&k).await.expect("list");
    let names: Vec<(&str, u64)> = listed
        .iter()
        .map(|d| (d.filename.as_str(), d.bytes))
        .collect();
    assert_eq!(names, vec![("a.txt", 12), ("b.csv", 8)]);

    let docs = store
        .bot_documents(&k, &["a.txt".into(), "missing.pdf".into()])
        .await
        .expect("docs");
    assert_eq!(docs.bytes(), 12);
    assert_eq!(docs.missing, vec!["missing.pdf".to_owned()]);

    let doc = store.get(&k, "a.txt").await.expect("get");
    assert_eq!(doc.bytes, b"twelve bytes");
    assert_eq!(doc.source_uri, dir.join("a.txt").display().to_string());
    assert!(matches!(
        store.get(&k, "missing.pdf").await,
        Err(DocumentError::Missing { .. })
    ));
    for evil in ["../../../etc/passwd", "..", "a/b.txt", ""] {
        assert!(
            matches!(
                store.get(&k, evil).await,
                Err(DocumentError::InvalidName { .. })
            ),
            "{evil}"
        );
    }
    assert!(matches!(
        store.list(&BotKey::new("..", "x")).await,
        Err(DocumentError::InvalidName { .. })
    ));
    assert!(store
        .list(&BotKey::new("user-2", "none"))
        .await
        .expect("list")
        .is_empty());

    let err = DirDocuments::new(root.path().join("nope"))
        .check()
        .await
        .expect_err("missing");
    assert!(
        err.is_fatal() && err.to_string().contains("--documents-dir"),
        "{err}"
    );
}

/// A folder in the bucket layout for `key()`, and its `documents/` folder.
fn bot_folder(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("user-1/01HZX5Q8J6N2W4V7T9R3K1M0PB/documents");
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[tokio::test]
async fn links_folders_and_bad_names_are_refused_per_document() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:root:/root:/bin/bash\n").expect("write");
    let root = tempfile::tempdir().expect("tempdir");
    let dir = bot_folder(root.path());
    std::fs::write(dir.join("ok.txt"), "fine").expect("write");
    std::os::unix::fs::symlink(&secret, dir.join("passwd.txt")).expect("symlink");
    std::os::unix::fs::symlink(dir.join("ok.txt"), dir.join("inner-link.txt")).expect("symlink");
    std::fs::create_dir(dir.join("folder.txt")).expect("mkdir");
    let store = DirDocuments::new(root.path());
    let k = key();

    for name in ["passwd.txt", "inner-link.txt"] {
        match store.get(&k, name).await {
            Err(e @ DocumentError::Refused { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("symbolic link") && text.contains(name),
                    "{text}"
                );
                assert!(!e.is_fatal(), "one document, not the store");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        store.get(&k, "folder.txt").await,
        Err(DocumentError::Refused { .. })
    ));
    assert_eq!(store.get(&k, "ok.txt").await.expect("get").bytes, b"fine");

    // A NUL byte: refused by name, and the source shown for it holds no NUL.
    let nul = "a\0b.txt";
    match store.get(&k, nul).await {
        Err(e @ DocumentError::InvalidName { .. }) => assert!(!e.to_string().contains('\0')),
        other => panic!("{other:?}"),
    }
    assert!(!store.source_uri(&k, nul).contains('\0'));

    // A bot folder that is a link to somewhere else is refused as well.
    let other = BotKey::new("user-2", "linked");
    std::fs::create_dir_all(root.path().join("user-2/linked")).expect("mkdir");
    std::fs::create_dir_all(outside.path().join("docs")).expect("mkdir");
    std::fs::write(outside.path().join("docs/x.txt"), "outside").expect("write");
    std::os::unix::fs::symlink(
        outside.path().join("docs"),
        root.path().join("user-2/linked/documents"),
    )
    .expect("symlink");
    match store.get(&other, "x.txt").await {
        Err(DocumentError::Refused { reason, .. }) => {
            assert!(reason.contains("symbolic link"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // The root itself may be a link (a mounted copy of the bucket).
    let link_root = outside.path().join("root-link");
    std::os::unix::fs::symlink(root.path(), &link_root).expect("symlink");
    let via_link = DirDocuments::new(&link_root);
    assert_eq!(
        via_link.get(&k, "ok.txt").await.expect("get").bytes,
        b"fine"
    );
}

#[tokio::test]
async fn documents_over_the_size_limit_are_refused_without_reading_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = bot_folder(root.path());
    // 64 GiB, sparse: reading it whole would exhaust memory, checking its size costs nothing.
    let huge = std::fs::File::create(dir.join("huge.txt")).expect("create");
    huge.set_len(64 << 30).expect("sparse file");
    std::fs::write(dir.join("limit.txt"), vec![b'a'; 1000]).expect("write");
    std::fs::write(dir.join("over.txt"), vec![b'a'; 1001]).expect("write");
    let store = DirDocuments::new(root.path()).with_max_bytes(1000);
    let k = key();
    for name in ["huge.txt", "over.txt"] {
        match store.get(&k, name).await {
            Err(e @ DocumentError::TooLarge { .. }) => {
                assert!(e.to_string().contains("max_bytes"), "{e}");
                assert!(!e.is_fatal());
            }
            other => panic!("{name}: {:?}", other.map(|d| d.bytes.len())),
        }
    }
    assert_eq!(
        store.get(&k, "limit.txt").await.expect("get").bytes.len(),
        1000
    );
}

#[tokio::test]
async fn s3_objects_over_the_size_limit_are_refused() {
    let sdk = sdk().await;
    let k = key();
    let objects = [("big.txt", 5000usize), ("small.txt", 10)]
        .map(|(name, len)| (document_key(&k, name), vec![b'x'; len]));
    let s3 = ragshift_testkit::s3::client(&sdk);
    let bucket = ragshift_testkit::s3::bucket_with(&s3, "docs-limit", objects).await;
    let store = S3Documents::new(&sdk, &bucket).with_max_bytes(4096);
    assert!(matches!(
        store.get(&k, "big.txt").await,
        Err(DocumentError::TooLarge { limit: 4096, .. })
    ));
    assert_eq!(
        store.get(&k, "small.txt").await.expect("get").bytes.len(),
        10
    );
    assert!(matches!(
        store.get(&k, "../../x/documents/small.txt").await,
        Err(DocumentError::InvalidName { .. })
    ));
}
