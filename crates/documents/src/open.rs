//! Building the configured document store from `[documents]` and `[aws]`.

use ragshift_config::{AwsConfig, DocumentsConfig, DocumentsKind};

use crate::dir::DirDocuments;
use crate::error::DocumentError;
use crate::s3::S3Documents;
use crate::store::DocumentStore;

/// Builds the store `[documents]` describes (no I/O: call [`DocumentStore::check`] next);
/// documents larger than `max_bytes` (`[ingest] max_bytes`) are refused without being read.
pub async fn from_config(
    documents: &DocumentsConfig,
    aws: &AwsConfig,
    max_bytes: u64,
) -> Result<Box<dyn DocumentStore>, DocumentError> {
    match documents.kind {
        DocumentsKind::S3 => {
            let Some(bucket) = documents.bucket.as_deref().filter(|b| !b.is_empty()) else {
                return Err(DocumentError::Store(
                    "[documents] kind is s3 but no bucket is set: set [documents] bucket (RAGSHIFT_DOCUMENTS_BUCKET, --documents-bucket) or [aws] stack (--stack)".into(),
                ));
            };
            let sdk = ragshift_aws::sdk_config(aws).await;
            Ok(Box::new(
                S3Documents::new(&sdk, bucket).with_max_bytes(max_bytes),
            ))
        }
        DocumentsKind::Dir => Ok(Box::new(
            DirDocuments::new(documents.path.clone()).with_max_bytes(max_bytes),
        )),
    }
}
