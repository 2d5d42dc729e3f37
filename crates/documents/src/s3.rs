//! The platform's document bucket: `s3://bucket/{user}/{bot}/documents/{filename}`.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use ragshift_aws::classify;
use ragshift_model::BotKey;

use crate::error::DocumentError;
use crate::store::{bot_prefix, check_names, printable, Document, DocumentInfo, DocumentStore};

/// Documents in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Documents {
    client: Client,
    bucket: String,
    max_bytes: u64,
}

impl S3Documents {
    /// A store on `bucket`.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        // Path-style addressing works with every endpoint (local AWS-API servers included)
        // and with bucket names containing dots.
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: bucket.into(),
            max_bytes: u64::MAX,
        }
    }

    /// Refuses objects larger than `max_bytes` (`ingest.max_bytes`), from their size before
    /// downloading and by never downloading more than that.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn hint(&self) -> String {
        format!(
            "check the bucket name ([documents] bucket, --documents-bucket or --stack) and the region for {}",
            self.bucket
        )
    }
}

#[async_trait]
impl DocumentStore for S3Documents {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn check(&self) -> Result<(), DocumentError> {
        // ListObjectsV2 needs the same permission as listing a bot's files, unlike HeadBucket.
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let err = classify(format!("listing bucket {}", self.bucket), &e);
                DocumentError::Store(match err.kind {
                    ragshift_aws::AwsErrorKind::NotFound => {
                        format!("{}; {}", err.message, self.hint())
                    }
                    _ => err.message,
                })
            })
    }

    async fn list(&self, key: &BotKey) -> Result<Vec<DocumentInfo>, DocumentError> {
        let prefix = bot_prefix(key);
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                DocumentError::from_aws(
                    key,
                    classify(format!("listing s3://{}/{prefix}", self.bucket), &e),
                    &self.bucket,
                )
            })?;
            for obj in page.contents.unwrap_or_default() {
                let Some(k) = obj.key else { continue };
                let Some(filename) = k.strip_prefix(&prefix) else {
                    continue;
                };
                if filename.is_empty() {
                    continue;
                }
                out.push(DocumentInfo {
                    filename: filename.to_owned(),
                    bytes: obj.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    source_uri: format!("s3://{}/{k}", self.bucket),
                });
            }
        }
        Ok(out)
    }

    fn source_uri(&self, key: &BotKey, filename: &str) -> String {
        printable(&format!(
            "s3://{}/{}{filename}",
            self.bucket,
            bot_prefix(key)
        ))
        .into_owned()
    }

    async fn get(&self, key: &BotKey, filename: &str) -> Result<Document, DocumentError> {
        check_names(key, filename)?;
        let object_key = format!("{}{filename}", bot_prefix(key));
        let source_uri = self.source_uri(key, filename);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(DocumentError::Missing {
                    key: key.clone(),
                    filename: filename.to_owned(),
                    source_uri,
                })
            }
            Err(e) => {
                return Err(DocumentError::from_aws(
                    key,
                    classify(format!("reading {source_uri}"), &e),
                    &self.bucket,
                ))
            }
        };
        let too_large = || DocumentError::TooLarge {
            key: key.clone(),
            filename: filename.to_owned(),
            limit: self.max_bytes,
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if size > self.max_bytes {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut body = out.body;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| DocumentError::Read {
                key: key.clone(),
                message: format!("reading {source_uri}: {e}"),
                retryable: true,
            })?;
            if (bytes.len() + piece.len()) as u64 > self.max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&piece);
        }
        Ok(Document { source_uri, bytes })
    }
}
