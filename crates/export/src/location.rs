//! Where an export lives: a local directory or `s3://bucket/prefix`. Files are always written
//! and read through a local staging path (S3 objects are uploaded after being written and
//! downloaded before being read), so the Parquet code only ever sees local files.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
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

/// Uploads a local file to `location`'s `name`.
pub async fn upload(
    s3: &Client,
    location: &Location,
    name: &str,
    local: &Path,
) -> Result<(), TransferError> {
    let Location::S3 { bucket, .. } = location else {
        return Ok(());
    };
    let object = location.name_of(name);
    let body = ByteStream::from_path(local)
        .await
        .map_err(|e| TransferError::local("reading", local.display().to_string(), e.to_string()))?;
    s3.put_object()
        .bucket(bucket)
        .key(location.key(name))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let a = ragshift_aws::classify(format!("uploading {object}"), &e);
            TransferError::aws("uploading", object.clone(), a)
        })?;
    Ok(())
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
        .map_err(|e| {
            let a = ragshift_aws::classify(format!("downloading {object}"), &e);
            TransferError::aws("downloading", object.clone(), a)
        })?;
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
