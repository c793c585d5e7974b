//! TEMPORARY stub (replaced by the real module).
#![allow(missing_docs, unused)]
use crate::error::*;
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    conn_id: String,
    conn_type: String,
    extra: serde_json::Map<String, serde_json::Value>,
}
impl Connection {
    pub fn new(conn_id: impl Into<String>, conn_type: impl Into<String>) -> Result<Self> {
        Ok(Connection {
            conn_id: conn_id.into(),
            conn_type: conn_type.into(),
            extra: Default::default(),
        })
    }
    pub fn from_uri(conn_id: &str, uri: &str) -> Result<Self> {
        todo!()
    }
    pub fn from_env(conn_id: &str) -> Result<Self> {
        Err(Error::new(ErrorKind::Config, "connection.from_env", "stub"))
    }
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }
    pub fn conn_type(&self) -> &str {
        &self.conn_type
    }
    pub fn host(&self) -> Option<&str> {
        None
    }
    pub fn login(&self) -> Option<&str> {
        None
    }
    pub fn password(&self) -> Option<&str> {
        None
    }
    pub fn schema(&self) -> Option<&str> {
        None
    }
    pub fn port(&self) -> Option<u16> {
        None
    }
    pub fn extra_dejson(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        None
    }
    pub fn secrets(&self) -> Vec<String> {
        vec![]
    }
}
pub struct Variable;
impl Variable {
    pub fn get_opt(key: &str) -> Result<Option<String>> {
        Ok(std::env::var(format!("AIRFLOW_VAR_{}", key.to_uppercase())).ok())
    }
    pub fn get_json(key: &str) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(
            &Self::get_opt(key)?.unwrap_or_default(),
        )?)
    }
}
