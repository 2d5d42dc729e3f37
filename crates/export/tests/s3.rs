//! Uploads to a real bucket on a loopback AWS-API server (moto): a file bigger than one part goes
//! up in parts and comes back byte for byte; a failed multipart upload leaves no parts behind.

use std::path::Path;

use ragshift_export::location::{download, upload_in_parts};
use ragshift_export::Location;
use ragshift_testkit::{shared_moto, unique_name};

/// S3's smallest part (moto enforces it too).
const MIB5: u64 = 5 * 1024 * 1024;

async fn s3() -> aws_sdk_s3::Client {
    let moto = shared_moto();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint_url())
        .region(aws_config::Region::new(moto.region()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// 12 MiB + 7 bytes that differ from part to part, so a part sent twice or out of order shows.
fn write_file(path: &Path) -> Vec<u8> {
    let bytes: Vec<u8> = (0..(12 * 1024 * 1024 + 7) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(path, &bytes).expect("write the file");
    bytes
}

#[tokio::test]
async fn a_file_bigger_than_a_part_goes_up_in_parts_and_comes_back_whole() {
    let s3 = s3().await;
    let bucket = unique_name("parts");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("bot.parquet");
    let bytes = write_file(&local);
    let location = Location::S3 {
        bucket: bucket.clone(),
        prefix: "kb".into(),
    };
    upload_in_parts(&s3, &location, "bot.parquet", &local, MIB5)
        .await
        .expect("upload in parts");
    // Three parts (5 + 5 + 2 MiB): S3 marks a multipart object's ETag with its part count.
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("kb/bot.parquet")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(bytes.len() as i64));
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
    let back = dir.path().join("back.parquet");
    download(&s3, &location, "bot.parquet", &back)
        .await
        .expect("download");
    assert!(
        std::fs::read(&back).expect("read back") == bytes,
        "the bytes differ"
    );

    // A file of one part or less goes up in one request.
    let small = dir.path().join("small");
    std::fs::write(&small, b"one part").expect("write");
    upload_in_parts(&s3, &location, "small", &small, MIB5)
        .await
        .expect("upload");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("kb/small")
        .send()
        .await
        .expect("head");
    assert!(
        !head.e_tag().unwrap_or_default().contains('-'),
        "{:?}",
        head.e_tag()
    );
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted_and_leaves_no_parts() {
    let s3 = s3().await;
    let bucket = unique_name("abort");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("bot.parquet");
    write_file(&local);
    let location = Location::S3 {
        bucket: bucket.clone(),
        prefix: String::new(),
    };
    // Parts of 1 MiB are below S3's minimum: completing the upload is refused.
    let err = upload_in_parts(&s3, &location, "bot.parquet", &local, 1024 * 1024)
        .await
        .expect_err("parts below the minimum are refused");
    assert!(err.to_string().contains("s3://"), "{err}");
    let open = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .expect("list uploads");
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let objects = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list objects");
    assert!(objects.contents().is_empty(), "{:?}", objects.contents());
}
