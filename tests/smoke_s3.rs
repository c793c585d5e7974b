//! Harness smoke test: both S3-compatible servers (moto and s3s-fs) answer a
//! create-bucket / put / get / delete round trip.

mod common;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;

fn client(conn: &gust::Connection) -> aws_sdk_s3::Client {
    let creds = Credentials::new(
        conn.login().expect("access key in login"),
        conn.password().expect("secret key in password"),
        None,
        None,
        "gust-smoke",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            conn.extra_str("region_name")
                .unwrap_or("us-east-1")
                .to_string(),
        ))
        .endpoint_url(conn.extra_str("endpoint_url").expect("endpoint_url extra"))
        .credentials_provider(creds)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn round_trip(conn_id: &str) {
    let conn = require_conn!(conn_id);
    let s3 = client(&conn);
    let bucket = common::unique("gust-smoke");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    s3.put_object()
        .bucket(&bucket)
        .key("dir/hello.txt")
        .body(ByteStream::from_static(b"hello gust"))
        .send()
        .await
        .expect("put");
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/hello.txt")
        .send()
        .await
        .expect("get");
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"hello gust");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    s3.delete_object()
        .bucket(&bucket)
        .key("dir/hello.txt")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

#[tokio::test]
async fn moto_s3_round_trip() {
    round_trip("aws_default").await;
}

#[tokio::test]
async fn s3s_fs_round_trip() {
    round_trip("s3s_fs").await;
}
