//! Harness smoke test: the project's Redis node and 6-node Redis Cluster answer.

mod common;

use redis::AsyncCommands;

fn url(host: &str, port: u16, password: &str) -> String {
    format!("redis://:{password}@{host}:{port}/0")
}

#[tokio::test]
async fn redis_single_node_round_trip_and_password_enforced() {
    let conn = require_conn!("redis_default");
    let (host, port) = (conn.host().expect("host"), conn.port().unwrap_or(6379));
    let client = redis::Client::open(url(host, port, conn.password().expect("password"))).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let key = common::unique("gust:smoke");
    let _: () = c.set_ex(&key, "v1", 60).await.unwrap();
    let v: String = c.get(&key).await.unwrap();
    assert_eq!(v, "v1");
    let _: () = c.del(&key).await.unwrap();

    let bad = redis::Client::open(url(host, port, "not-the-password")).unwrap();
    let Err(err) = bad.get_multiplexed_async_connection().await else {
        panic!("a wrong password must be rejected");
    };
    let text = err.to_string().to_uppercase();
    assert!(text.contains("WRONGPASS") || text.contains("AUTH"), "{err}");
}

#[tokio::test]
async fn redis_cluster_has_three_masters_and_routes_keys() {
    let conn = require_conn!("redis_cluster");
    let password = conn.password().expect("password").to_string();
    let nodes: Vec<String> = conn
        .extra_str("startup_nodes")
        .expect("startup_nodes extra")
        .split(',')
        .map(|n| format!("redis://{n}/"))
        .collect();
    let client = redis::cluster::ClusterClient::builder(nodes)
        .password(password)
        .build()
        .unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    // Keys spread over the hash slots of all three masters.
    for i in 0..30 {
        let key = format!("gust:smoke:{i}");
        let _: () = c.set_ex(&key, i, 60).await.unwrap();
        let v: i32 = c.get(&key).await.unwrap();
        assert_eq!(v, i);
    }
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_size:3"), "{info}");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        nodes.lines().filter(|l| l.contains("master")).count(),
        3,
        "{nodes}"
    );
    assert_eq!(
        nodes.lines().filter(|l| l.contains("slave")).count(),
        3,
        "{nodes}"
    );
}
