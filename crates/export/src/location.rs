//! Where an export lives: a local directory or `s3://bucket/prefix`. Files are always written
//! and read through a local staging path (S3 objects are uploaded after being written and
//! downloaded before being read), so the Parquet code only ever sees local files.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use tokio::io::AsyncWriteExt;

/// An export's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Dir(PathBuf),
    /// A prefix in an S3 bucket.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without a trailing slash (may be empty).
        prefix: String,
    },
}

impl Location {
    /// `s3://bucket/prefix` or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{s} names no bucket: use s3://BUCKET/PREFIX"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_end_matches('/').to_owned(),
            });
        }
        if s.contains("://") {
            return Err(format!(
                "{s}: only local directories and s3://bucket/prefix are supported"
            ));
        }
        Ok(Self::Dir(PathBuf::from(s)))
    }

    /// For messages.
    pub fn display(&self) -> String {
        match self {
            Self::Dir(p) => p.display().to_string(),
            Self::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// The S3 key of a file of the export.
    pub fn key(&self, name: &str) -> String {
        match self {
            Self::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{name}"),
            _ => name.to_owned(),
        }
    }

    /// `location/name` for messages.
    pub fn name_of(&self, name: &str) -> String {
        match self {
            Self::Dir(p) => p.join(name).display().to_string(),
            Self::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.key(name)),
        }
    }
}

/// Errors moving files to or from S3.
#[derive(Debug, thiserror::Error)]
#[error("{what} {object}: {message}")]
pub struct TransferError {
    /// Uploading/downloading.
    pub what: &'static str,
    /// The object.
    pub object: String,
    /// Why, with the fix.
    pub message: String,
    /// The SDK's classification, for retry decisions.
    pub kind: Option<ragshift_aws::AwsErrorKind>,
}

impl TransferError {
    /// A failure on this side (a local file): no SDK kind, so never retried.
    fn local(what: &'static str, object: String, message: String) -> Self {
        Self {
            what,
            object,
            message,
            kind: None,
        }
    }

    /// A failed S3 call, with the SDK's classification for retry decisions.
    pub(crate) fn aws(what: &'static str, object: String, e: ragshift_aws::AwsError) -> Self {
        Self {
            what,
            object,
            message: e.message,
            kind: Some(e.kind),
        }
    }
}

/// Bytes per part when a file goes up in parts: small enough that a failed part is cheap to send
/// again, big enough that S3's 10,000 parts reach 160 GB (parts grow beyond that).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Most parts one multipart upload may have (S3's limit).
const MAX_PARTS: u64 = 10_000;

/// Uploads a local file to `location`'s `name`: in one request up to [`PART_SIZE`], in parts
/// above it (one PutObject is capped at 5 GB, and a bot's file can be bigger).
pub async fn upload(
    s3: &Client,
    location: &Location,
    name: &str,
    local: &Path,
) -> Result<(), TransferError> {
    upload_in_parts(s3, location, name, local, PART_SIZE).await
}

/// [`upload`] with parts of `part_size` bytes (S3's smallest part is 5 MiB). Each part is read
/// from the file as it is sent, so memory doesn't grow with the file; a failed upload is
/// aborted, so no parts are left behind in the bucket.
pub async fn upload_in_parts(
    s3: &Client,
    location: &Location,
    name: &str,
    local: &Path,
    part_size: u64,
) -> Result<(), TransferError> {
    let Location::S3 { bucket, .. } = location else {
        return Ok(());
    };
    let object = location.name_of(name);
    let key = location.key(name);
    let reading =
        |message: String| TransferError::local("reading", local.display().to_string(), message);
    let size = tokio::fs::metadata(local)
        .await
        .map_err(|e| reading(e.to_string()))?
        .len();
    let part_size = part_size.max(1).max(size.div_ceil(MAX_PARTS));
    if size <= part_size {
        let body = ByteStream::from_path(local)
            .await
            .map_err(|e| reading(e.to_string()))?;
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(body)
            .send()
            .await
            .map_err(|e| sdk_error("uploading", &object, &e))?;
        return Ok(());
    }
    let created = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_error("uploading", &object, &e))?;
    let Some(upload_id) = created.upload_id() else {
        return Err(TransferError::local(
            "uploading",
            object,
            "S3 started a multipart upload without an upload id".to_owned(),
        ));
    };
    let upload = Multipart {
        s3,
        bucket,
        key: &key,
        id: upload_id,
        object: &object,
    };
    let sent = upload.send_parts(local, size, part_size).await;
    let completed = match sent {
        Ok(parts) => s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("uploading", &object, &e)),
        Err(e) => Err(e),
    };
    if completed.is_err() {
        // Parts of an unfinished upload are billed until aborted.
        if let Err(e) = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(
                "could not abort the failed upload of {object} (its parts stay in the bucket until a lifecycle rule removes them): {}",
                sdk_error("aborting", &object, &e)
            );
        }
    }
    completed
}

/// One multipart upload in progress.
struct Multipart<'a> {
    s3: &'a Client,
    bucket: &'a str,
    key: &'a str,
    id: &'a str,
    /// `s3://bucket/key`, for messages.
    object: &'a str,
}

impl Multipart<'_> {
    /// Sends the file's parts in order, each read from its offset as it goes.
    async fn send_parts(
        &self,
        local: &Path,
        size: u64,
        part_size: u64,
    ) -> Result<Vec<CompletedPart>, TransferError> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let length = part_size.min(size - offset);
            let body = ByteStream::read_from()
                .path(local)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| {
                    TransferError::local("reading", local.display().to_string(), e.to_string())
                })?;
            let out = self
                .s3
                .upload_part()
                .bucket(self.bucket)
                .key(self.key)
                .upload_id(self.id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error("uploading", self.object, &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }
}

/// A transfer error from the SDK's, classified for retry decisions.
fn sdk_error<E>(
    what: &'static str,
    object: &str,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> TransferError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    TransferError::aws(
        what,
        object.to_owned(),
        ragshift_aws::classify(format!("{what} {object}"), e),
    )
}

/// Downloads `location`'s `name` into a local file.
pub async fn download(
    s3: &Client,
    location: &Location,
    name: &str,
    local: &Path,
) -> Result<(), TransferError> {
    let Location::S3 { bucket, .. } = location else {
        return Ok(());
    };
    let object = location.name_of(name);
    let err = |message: String| TransferError::local("downloading", object.clone(), message);
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(location.key(name))
        .send()
        .await
        .map_err(|e| sdk_error("downloading", &object, &e))?;
    let mut body = out.body.into_async_read();
    let mut file = tokio::fs::File::create(local)
        .await
        .map_err(|e| err(format!("creating {}: {e}", local.display())))?;
    tokio::io::copy(&mut body, &mut file)
        .await
        .map_err(|e| err(e.to_string()))?;
    file.flush().await.map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// An S3 client from `[aws]` (path-style addressing when an endpoint URL is set, as local
/// AWS-API servers need).
pub async fn s3_client(aws: &ragshift_config::AwsConfig) -> Client {
    let sdk = ragshift_aws::sdk_config(aws).await;
    let mut b = aws_sdk_s3::config::Builder::from(&sdk);
    if aws.endpoint_url.is_some() {
        b = b.force_path_style(true);
    }
    Client::from_conf(b.build())
}

impl Location {
    /// The S3 client this location needs (`None` for a directory), so that export and import
    /// open it the same way.
    pub async fn s3_client(&self, aws: &ragshift_config::AwsConfig) -> Option<Client> {
        match self {
            Self::S3 { .. } => Some(s3_client(aws).await),
            Self::Dir(_) => None,
        }
    }
}
