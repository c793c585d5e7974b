//! A connection without credentials falls back to the default AWS chain (here
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, as seed 002 sets them). Its own
//! test binary, because it sets process environment variables.

mod common;

use gust::Connection;
use gust::hooks::s3::S3Hook;

#[tokio::test]
async fn connection_without_keys_uses_the_aws_chain() {
    // s3s-fs checks signatures, so success proves the chain supplied the right keys.
    let server = require_conn!("s3s_fs");
    let endpoint = server
        .extra_str("endpoint_url")
        .expect("endpoint_url")
        .to_string();
    let bare = Connection::new("bare_aws", "aws")
        .unwrap()
        .with_extra("endpoint_url", endpoint.into())
        .with_extra("region_name", "us-east-1".into());
    // SAFETY: this binary has one test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", server.login().unwrap());
        std::env::set_var("AWS_SECRET_ACCESS_KEY", server.password().unwrap());
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
    }
    let s3 = S3Hook::from_connection(&bare).await.unwrap();
    s3.test_connection()
        .await
        .expect("credentials from the environment");
    // And a wrong key in the environment is an authentication error.
    unsafe { std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-secret") };
    let s3 = S3Hook::from_connection(&bare).await.unwrap();
    let e = s3.test_connection().await.unwrap_err();
    assert_eq!(e.kind(), gust::ErrorKind::Auth, "{e}");
}
