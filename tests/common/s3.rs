//! What an S3 server reports of the objects and buckets a test wrote, read
//! through the hook's own client.

use aws_sdk_s3::types::ServerSideEncryption;
use gust::hooks::s3::S3Hook;

/// The server-side encryption the server reports for `bucket`/`key` (its
/// `HeadObject`); `None` for an unencrypted object.
pub async fn sse_of(hook: &S3Hook, bucket: &str, key: &str) -> Option<ServerSideEncryption> {
    hook.client()
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD {bucket}/{key}: {e:?}"))
        .server_side_encryption()
        .cloned()
}

/// The location constraint the server reports for `bucket`
/// (`GetBucketLocation`); `None` for `us-east-1`.
pub async fn location_of(hook: &S3Hook, bucket: &str) -> Option<String> {
    hook.client()
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetBucketLocation {bucket}: {e:?}"))
        .location_constraint()
        .map(|c| c.as_str().to_string())
}
