//! Uploads to a real bucket on a loopback AWS-API server (moto): a file bigger than one part goes
//! up in parts and comes back byte for byte; a failed multipart upload leaves no parts behind.

use std::path::Path;

use ragshift_export::location::{download, upload_in_parts};
use ragshift_export::Location;
use ragshift_testkit::s3::bucket_with;
use ragshift_testkit::shared_moto;

/// S3's smallest part (moto enforces it too).
const MIB5: u64 = 5 * 1024 * 1024;

/// 12 MiB + 7 bytes that differ from part to part, so a part sent twice or out of order shows.
fn write_file(path: &Path) -> Vec<u8> {
    let bytes: Vec<u8> = (0..(12 * 1024 * 1024 + 7) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(path, &bytes).expect("write the file");
    bytes
}

/// A fresh bucket and a 12 MiB file to put in it under `prefix`.
struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    dir: tempfile::TempDir,
    local: std::path::PathBuf,
    bytes: Vec<u8>,
    location: Location,
}

async fn setup(name: &str, prefix: &str) -> Setup {
    let s3 = ragshift_testkit::s3::client(&shared_moto().sdk_config().await);
    let bucket = bucket_with(&s3, name, []).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("bot.parquet");
    let bytes = write_file(&local);
    let location = Location::S3 {
        bucket: bucket.clone(),
        prefix: prefix.into(),
    };
    Setup {
        s3,
        bucket,
        dir,
        local,
        bytes,
        location,
    }
}

async fn head_of(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("head")
}

#[tokio::test]
async fn a_file_bigger_than_a_part_goes_up_in_parts_and_comes_back_whole() {
    let t = setup("parts", "kb").await;
    upload_in_parts(&t.s3, &t.location, "bot.parquet", &t.local, MIB5)
        .await
        .expect("upload in parts");
    // Three parts (5 + 5 + 2 MiB): S3 marks a multipart object's ETag with its part count.
    let head = head_of(&t.s3, &t.bucket, "kb/bot.parquet").await;
    assert_eq!(head.content_length(), Some(t.bytes.len() as i64));
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
    let back = t.dir.path().join("back.parquet");
    download(&t.s3, &t.location, "bot.parquet", &back)
        .await
        .expect("download");
    assert!(
        std::fs::read(&back).expect("read back") == t.bytes,
        "the bytes differ"
    );

    // A file of one part or less goes up in one request.
    let small = t.dir.path().join("small");
    std::fs::write(&small, b"one part").expect("write");
    upload_in_parts(&t.s3, &t.location, "small", &small, MIB5)
        .await
        .expect("upload");
    let head = head_of(&t.s3, &t.bucket, "kb/small").await;
    assert!(
        !head.e_tag().unwrap_or_default().contains('-'),
        "{:?}",
        head.e_tag()
    );
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted_and_leaves_no_parts() {
    let t = setup("abort", "").await;
    // Parts of 1 MiB are below S3's minimum: completing the upload is refused.
    let err = upload_in_parts(&t.s3, &t.location, "bot.parquet", &t.local, 1024 * 1024)
        .await
        .expect_err("parts below the minimum are refused");
    assert!(err.to_string().contains("s3://"), "{err}");
    let open =
        t.s3.list_multipart_uploads()
            .bucket(&t.bucket)
            .send()
            .await
            .expect("list uploads");
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let objects =
        t.s3.list_objects_v2()
            .bucket(&t.bucket)
            .send()
            .await
            .expect("list objects");
    assert!(objects.contents().is_empty(), "{:?}", objects.contents());
}
