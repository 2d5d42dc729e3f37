//! Buckets of documents in moto's S3, laid out as the platform stores uploads.

use crate::unique_name;

/// An S3 client for `sdk` with path-style addressing (moto serves buckets by path).
pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Creates a bucket under a fresh name starting with `prefix` holding `objects` (key, body),
/// and returns its name. Panics if moto refuses: a test can't go on without it.
pub async fn bucket_with(
    s3: &aws_sdk_s3::Client,
    prefix: &str,
    objects: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> String {
    let bucket = unique_name(prefix);
    if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
        panic!("creating bucket {bucket}: {e:?}");
    }
    for (key, body) in objects {
        if let Err(e) = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
        {
            panic!("putting {key} into {bucket}: {e:?}");
        }
    }
    bucket
}
