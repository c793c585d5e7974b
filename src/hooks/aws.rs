//! [`AwsConfig`]: what an Airflow `aws` connection says, shared by every AWS
//! hook ([`S3Hook`](crate::hooks::s3::S3Hook), and `SageMakerHook` with the
//! `sagemaker` feature).
//!
//! Reading the connection is pure and unit-tested; loading credentials (the
//! default AWS chain when the connection has none) is the one async step,
//! [`AwsConfig::load`].
//!
//! | where | what |
//! |---|---|
//! | login / password | access key id / secret access key |
//! | extra `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token` | the same, when login/password are empty |
//! | extra `region_name` | the region (default: the AWS chain, else `us-east-1`) |
//! | extra `endpoint_url` | a custom endpoint for every service |
//! | extra `service_config.<service>.endpoint_url` | one service's endpoint, overriding `endpoint_url` |
//! | extra `config_kwargs.retries.max_attempts` (or `max_attempts`) | attempts per request (default 3, at most 20) |

use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

use crate::connection::Connection;
use crate::error::{ErrorKind, Result};
use crate::hooks::scope::HookScope;

/// The parts of an `aws` connection every AWS hook reads, for one service
/// (`s3`, `sagemaker`…): see the [module docs](self). `Debug` masks the secret
/// key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The conn id it was read from.
    pub conn_id: String,
    /// The service whose `service_config` entry was read.
    pub service: String,
    /// The access key id, when the connection has one.
    pub access_key_id: Option<String>,
    /// The secret access key, when the connection has one.
    pub secret_access_key: Option<String>,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
    /// The connection's region, if it names one.
    pub region: Option<String>,
    /// The service's endpoint (`service_config.<service>.endpoint_url`, else
    /// `endpoint_url`), checked to be an `http(s)://host` URL.
    pub endpoint: Option<String>,
    /// Attempts per request, 1..=20.
    pub max_attempts: u32,
}

impl fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("conn_id", &self.conn_id)
            .field("service", &self.service)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// A string at a JSON path of the extras (`["service_config", "s3", "endpoint_url"]`).
pub(crate) fn extra_path<'a>(conn: &'a Connection, path: &[&str]) -> Option<&'a str> {
    let (first, rest) = path.split_first()?;
    let mut v = conn.extra_dejson().get(*first)?;
    for p in rest {
        v = v.get(*p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// Why the extra `name` = `url` cannot be an endpoint, if it cannot. `localhost:9000`
/// parses as a URL of scheme `localhost`, which the SDK accepts and then fails on
/// at the first request (a retryable error, retried for nothing), so the scheme
/// and the host are checked here.
fn check_endpoint(name: &str, url: &str) -> std::result::Result<(), String> {
    let with_http = format!("http://{url}");
    let has_host = |u: &url::Url| u.host_str().is_some_and(|h| !h.is_empty());
    let fixable = !url.contains("://")
        && url::Url::parse(&with_http).is_ok_and(|u| has_host(&u) && u.path() == "/");
    match url::Url::parse(url) {
        // Requests are signed with the access key: credentials in the endpoint
        // mean nothing to AWS, and the SDK would log and sign them as part of the host.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(format!(
            "extra {name} must not carry credentials (user:password@); put the access key \
             id in the login and the secret key in the password"
        )),
        Ok(u) if matches!(u.scheme(), "http" | "https") && has_host(&u) => Ok(()),
        // `host:port` parses with `host` as the scheme; a bare `host` not at all.
        _ if fixable => Err(format!(
            "extra {name} `{url}` has no scheme: write {with_http} (or https://)"
        )),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Err(format!(
            "extra {name} `{url}` must start with http:// or https://"
        )),
        _ => Err(format!(
            "extra {name} `{url}` is not an endpoint URL (expected e.g. http://localhost:9000)"
        )),
    }
}

impl AwsConfig {
    /// Reads `conn` for `service`; errors are [`Config`](ErrorKind::Config)
    /// errors of `<service>.connect` naming the conn id, without secrets.
    pub fn from_connection(conn: &Connection, service: &'static str) -> Result<Self> {
        let scope = HookScope::new(service, conn);
        let config_err = |msg: &str| scope.error(ErrorKind::Config, "connect", msg);
        if !matches!(conn.conn_type(), "aws" | "s3" | "") {
            return Err(config_err(&format!(
                "conn type `{}` is not `aws`",
                conn.conn_type()
            )));
        }
        let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        let access_key_id =
            nonempty(conn.login()).or(nonempty(conn.extra_str("aws_access_key_id")));
        let secret_access_key =
            nonempty(conn.password()).or(nonempty(conn.extra_str("aws_secret_access_key")));
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err(config_err(
                "the connection has an access key id without a secret key, or the reverse",
            ));
        }
        let service_endpoint_name = format!("service_config.{service}.endpoint_url");
        let service_endpoint = extra_path(conn, &["service_config", service, "endpoint_url"]);
        for (name, url) in [
            (service_endpoint_name.as_str(), service_endpoint),
            ("endpoint_url", conn.extra_str("endpoint_url")),
        ] {
            if let Some(url) = url {
                check_endpoint(name, url).map_err(|e| config_err(&e))?;
            }
        }
        let max_attempts = conn
            .extra_dejson()
            .get("config_kwargs")
            .and_then(|c| c.get("retries"))
            .and_then(|r| r.get("max_attempts"))
            .or(conn.extra_dejson().get("max_attempts"))
            .and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .unwrap_or(3)
            .clamp(1, 20) as u32;
        Ok(AwsConfig {
            conn_id: conn.conn_id().to_string(),
            service: service.to_string(),
            access_key_id,
            secret_access_key,
            session_token: nonempty(conn.extra_str("aws_session_token")),
            region: nonempty(conn.extra_str("region_name")),
            endpoint: nonempty(service_endpoint.or(conn.extra_str("endpoint_url"))),
            max_attempts,
        })
    }

    /// The SDK configuration: the connection's credentials, or the default AWS
    /// chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, SSO,
    /// instance roles) when it has none; its region, else the chain's. Returns
    /// the region used (`us-east-1` when nothing names one).
    pub async fn load(&self) -> (SdkConfig, String) {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let (Some(k), Some(s)) = (&self.access_key_id, &self.secret_access_key) {
            let creds = Credentials::new(k, s, self.session_token.clone(), None, "gust-connection");
            loader = loader.credentials_provider(creds);
        }
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        (sdk, region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(uri: &str) -> Connection {
        Connection::from_uri("aws_x", uri).unwrap()
    }

    #[test]
    fn reads_credentials_region_endpoint_and_attempts() {
        let c = conn(
            "aws://AKIDEXAMPLE:s3cr3t-key@/?region_name=eu-west-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A55000&max_attempts=7",
        );
        let cfg = AwsConfig::from_connection(&c, "sagemaker").unwrap();
        assert_eq!(cfg.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(cfg.secret_access_key.as_deref(), Some("s3cr3t-key"));
        assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cfg.endpoint.as_deref(), Some("http://127.0.0.1:55000"));
        assert_eq!(cfg.max_attempts, 7);
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t-key"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn a_service_endpoint_overrides_the_common_one() {
        let c = Connection::new("aws_x", "aws")
            .unwrap()
            .with_extra("endpoint_url", "http://a:1".into())
            .with_extra(
                "service_config",
                serde_json::json!({"sagemaker": {"endpoint_url": "http://b:2"}}),
            )
            .with_extra(
                "config_kwargs",
                serde_json::json!({"retries": {"max_attempts": 30}}),
            );
        let sm = AwsConfig::from_connection(&c, "sagemaker").unwrap();
        assert_eq!(sm.endpoint.as_deref(), Some("http://b:2"));
        let s3 = AwsConfig::from_connection(&c, "s3").unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("http://a:1"));
        assert_eq!(s3.max_attempts, 20, "clamped");
    }

    #[test]
    fn bad_connections_are_config_errors_without_secrets() {
        for (uri, says) in [
            ("aws://AKID:@/", "without a secret key"),
            ("aws://:only-secret-9@/", "without a secret key"),
            ("postgres://u:p@h/db", "is not `aws`"),
            (
                "aws://k:s3cr3t@/?endpoint_url=localhost%3A9000",
                "has no scheme",
            ),
            (
                "aws://k:s3cr3t@/?endpoint_url=ftp%3A%2F%2Fh",
                "http:// or https://",
            ),
        ] {
            let e = AwsConfig::from_connection(&conn(uri), "sagemaker").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{uri}");
            assert_eq!(e.operation(), "sagemaker.connect");
            assert_eq!(e.context("conn_id"), Some("aws_x"));
            let shown = e.to_string();
            assert!(shown.contains(says), "{uri}: {shown}");
            assert!(!shown.contains("s3cr3t") && !shown.contains("only-secret-9"));
        }
    }

    #[test]
    fn endpoints_need_an_http_scheme_and_a_host() {
        assert!(check_endpoint("endpoint_url", "http://localhost:9000").is_ok());
        assert!(check_endpoint("endpoint_url", "https://s3.example.com/").is_ok());
        let e = check_endpoint("endpoint_url", "localhost:9000").unwrap_err();
        assert!(e.contains("write http://localhost:9000"), "{e}");
        let e = check_endpoint("endpoint_url", "minio").unwrap_err();
        assert!(e.contains("write http://minio"), "{e}");
        let e = check_endpoint("endpoint_url", "ftp://h:21").unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
        let e = check_endpoint("endpoint_url", "not a url").unwrap_err();
        assert!(e.contains("not an endpoint URL"), "{e}");
        assert!(check_endpoint("endpoint_url", "http://").is_err());
    }
}
