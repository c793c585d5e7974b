//! The runtime's end of the `--comm` socket: [`Comm`].
//!
//! ```no_run
//! # async fn run() -> gust::Result<()> {
//! use chrono::Utc;
//! use gust::airflow::comm::Comm;
//! use gust::airflow::messages::SucceedTask;
//!
//! let mut comm = Comm::connect("127.0.0.1:40123").await?;
//! let startup = comm.read_startup().await?;
//! let pg = comm.get_connection("my_pg").await?;
//! match comm.get_variable("threshold").await {
//!     Ok(value) => println!("threshold = {value:?}"),
//!     Err(e) if e.kind() == gust::ErrorKind::NotFound => println!("no threshold"),
//!     Err(e) => return Err(e),
//! }
//! comm.send_terminal(SucceedTask::new(Utc::now())).await?;
//! # let _ = (startup, pg); Ok(()) }
//! ```

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::codec::{self, ResponseFrame};
use super::messages::{
    ConnectionResult, ErrorResponse, FromSupervisor, GetConnection, GetVariable, GetXCom,
    PutVariable, SetXCom, StartupDetails, ToSupervisor,
};
use crate::error::{Error, ErrorKind, Result};

/// How long [`Comm`] waits for a frame by default: 5 minutes, enough for the
/// supervisor's own retries of the Execution API; see [`Comm::with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long [`Comm::connect`] tries to reach the supervisor.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Both slots of a response frame, typed ([`Comm::call`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The body slot: a result, an `ErrorResponse` for "not found", or `None`
    /// (the empty answer to `SetXCom`, `PutVariable`, the terminal messages…).
    pub body: Option<FromSupervisor>,
    /// The error slot: set when the supervisor or the API failed.
    pub error: Option<ErrorResponse>,
}

/// The runtime's client of the supervisor: one request at a time, each
/// answered by the frame with its id.
///
/// Ids count from 1 (the supervisor's `StartupDetails` has id 0). Every read
/// has a timeout ([`DEFAULT_TIMEOUT`]): Airflow 3.3.2's supervisor logs and
/// drops a request it cannot decode without answering it, so an unbounded wait
/// could hang the task forever. After a timeout, a closed socket or a reply
/// with another id, the `Comm` is *broken* and refuses further requests — a
/// late reply would otherwise answer the wrong request.
#[derive(Debug)]
pub struct Comm<S> {
    stream: S,
    next_id: u64,
    timeout: Duration,
    broken: Option<String>,
    finished: bool,
}

impl Comm<TcpStream> {
    /// Dials the supervisor's `--comm` address (`127.0.0.1:PORT`), retrying
    /// refused connections for up to [`CONNECT_TIMEOUT`].
    pub async fn connect(addr: &str) -> Result<Self> {
        Self::connect_within(addr, CONNECT_TIMEOUT).await
    }

    /// [`connect`](Self::connect) with another deadline.
    pub async fn connect_within(addr: &str, within: Duration) -> Result<Self> {
        const OP: &str = "airflow.connect";
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = tokio::time::timeout(left, TcpStream::connect(addr)).await;
            match attempt {
                Ok(Ok(stream)) => {
                    // Frames are small and each waits for an answer: no Nagle delay.
                    let _ = stream.set_nodelay(true);
                    return Ok(Comm::new(stream));
                }
                Ok(Err(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(addr, error = %e, "supervisor not reachable yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(e)) => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        OP,
                        "cannot reach the supervisor",
                    )
                    .with("addr", addr)
                    .with_source(e));
                }
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        OP,
                        format!("the supervisor did not accept within {within:?}"),
                    )
                    .with("addr", addr));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Comm<S> {
    /// A client over a connected stream (a `TcpStream`, or one end of
    /// `tokio::io::duplex` in tests).
    pub fn new(stream: S) -> Self {
        Comm {
            stream,
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
            broken: None,
            finished: false,
        }
    }

    /// Sets how long each read waits for a frame.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Reads the supervisor's first frame, which must be `StartupDetails` with id 0.
    pub async fn read_startup(&mut self) -> Result<StartupDetails> {
        const OP: &str = "airflow.read_startup";
        self.usable(OP)?;
        let frame = self.read_response(OP, "StartupDetails").await?;
        if frame.id != 0 {
            return Err(self.break_with(OP, format!("the first frame has id {}, not 0", frame.id)));
        }
        if let Some(error) = frame.error {
            let error: ErrorResponse = serde_json::from_value(error).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    OP,
                    format!("a malformed ErrorResponse: {e}"),
                )
            })?;
            return Err(error.to_error(OP));
        }
        let Some(body) = frame.body else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the first frame has no body",
            ));
        };
        match FromSupervisor::from_json(body).map_err(|e| e.with_operation(OP))? {
            FromSupervisor::StartupDetails(s) => Ok(*s),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "the first frame is {}, not StartupDetails",
                    other.type_name()
                ),
            )),
        }
    }

    /// Sends `request` and returns both slots of its answer, as they are.
    pub async fn call(&mut self, request: impl Into<ToSupervisor>) -> Result<Reply> {
        const OP: &str = "airflow.request";
        let request = request.into();
        self.usable(OP)?;
        let type_name = request.type_name().to_string();
        let id = self.next_id;
        self.next_id += 1;
        let payload = codec::encode_request(id, &request.to_json())
            .map_err(|e| e.with("request", &type_name))?;
        tracing::debug!(id, request = %type_name, "airflow request");
        if let Err(e) = codec::write_frame(&mut self.stream, &payload).await {
            self.broken = Some(format!("writing {type_name} failed"));
            return Err(e.with("request", &type_name));
        }
        let frame = self.read_response(OP, &type_name).await?;
        if frame.id != id {
            return Err(self
                .break_with(
                    OP,
                    format!("the answer has id {}, the request {id}", frame.id),
                )
                .with("request", &type_name));
        }
        let body = frame
            .body
            .map(FromSupervisor::from_json)
            .transpose()
            .map_err(|e| e.with_operation(OP).with("request", &type_name))?;
        let error = frame
            .error
            .map(|e| {
                serde_json::from_value::<ErrorResponse>(e).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        OP,
                        format!("a malformed ErrorResponse: {e}"),
                    )
                    .with("request", &type_name)
                })
            })
            .transpose()?;
        Ok(Reply { body, error })
    }

    /// Sends `request` and returns its answer's body (`None` for an empty
    /// answer). An `ErrorResponse` in either slot is an error (see
    /// [`ErrorResponse::to_error`]): not found is [`ErrorKind::NotFound`], with
    /// Airflow's error type in the context (`airflow_error`).
    pub async fn request(
        &mut self,
        request: impl Into<ToSupervisor>,
    ) -> Result<Option<FromSupervisor>> {
        const OP: &str = "airflow.request";
        let request = request.into();
        let type_name = request.type_name().to_string();
        let target = target_of(&request);
        let with_target = |mut e: Error| {
            if let Some((k, v)) = &target {
                e = e.with(k, v);
            }
            e
        };
        let reply = self.call(request).await.map_err(with_target)?;
        if let Some(error) = reply.error {
            return Err(with_target(error.to_error(OP).with("request", &type_name)));
        }
        match reply.body {
            Some(FromSupervisor::ErrorResponse(e)) => {
                Err(with_target(e.to_error(OP).with("request", &type_name)))
            }
            body => Ok(body),
        }
    }

    /// A connection; a missing one is an [`ErrorKind::NotFound`] error
    /// (`airflow_error` `CONNECTION_NOT_FOUND`).
    pub async fn get_connection(&mut self, conn_id: &str) -> Result<ConnectionResult> {
        let body = self
            .request(GetConnection {
                conn_id: conn_id.into(),
            })
            .await?;
        match body {
            Some(FromSupervisor::ConnectionResult(c)) => Ok(c),
            other => Err(
                unexpected("airflow.get_connection", "ConnectionResult", other.as_ref())
                    .with("conn_id", conn_id),
            ),
        }
    }

    /// A variable's value (`None` if stored as null); a missing variable is an
    /// [`ErrorKind::NotFound`] error (`airflow_error` `VARIABLE_NOT_FOUND`).
    pub async fn get_variable(&mut self, key: &str) -> Result<Option<String>> {
        match self.request(GetVariable { key: key.into() }).await? {
            Some(FromSupervisor::VariableResult(v)) => Ok(v.value),
            other => Err(
                unexpected("airflow.get_variable", "VariableResult", other.as_ref())
                    .with("key", key),
            ),
        }
    }

    /// Sets a variable.
    pub async fn put_variable(
        &mut self,
        key: &str,
        value: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        self.request(PutVariable {
            key: key.into(),
            value: value.map(Into::into),
            description: description.map(Into::into),
        })
        .await?;
        Ok(())
    }

    /// An XCom value; `Value::Null` when there is none (Airflow does not
    /// report a missing XCom as an error).
    pub async fn get_xcom(&mut self, request: GetXCom) -> Result<Value> {
        let key = request.key.clone();
        match self.request(request).await? {
            Some(FromSupervisor::XComResult(x)) => Ok(x.value),
            other => {
                Err(unexpected("airflow.get_xcom", "XComResult", other.as_ref()).with("key", key))
            }
        }
    }

    /// Pushes an XCom value.
    pub async fn set_xcom(&mut self, request: SetXCom) -> Result<()> {
        self.request(request).await?;
        Ok(())
    }

    /// Sends the terminal message (`SucceedTask`, `TaskState` or `RetryTask`)
    /// and waits for its answer: for `SucceedTask` and `RetryTask` the
    /// supervisor calls the API server first and answers with an error if that
    /// failed. Afterwards the `Comm` refuses further requests.
    ///
    /// An error answer needs no retry from the runtime: Airflow 3.3.2 keeps the
    /// undelivered `SucceedTask`/`RetryTask` and replays it after the process
    /// exits (`_replay_pending_terminal_state_msg`); the runtime should log the
    /// error and exit.
    pub async fn send_terminal(&mut self, message: impl Into<ToSupervisor>) -> Result<()> {
        const OP: &str = "airflow.send_terminal";
        let message = message.into();
        if !message.is_terminal() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!("{} does not end a task", message.type_name()),
            ));
        }
        let result = self.request(message).await;
        self.finished = true;
        result.map(|_| ())
    }

    fn usable(&self, op: &'static str) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::new(
                ErrorKind::Unavailable,
                op,
                format!("the connection to the supervisor is broken ({why})"),
            )
            .with_retryable(false));
        }
        if self.finished {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "the task already sent its terminal message",
            ));
        }
        Ok(())
    }

    fn break_with(&mut self, op: &'static str, why: String) -> Error {
        self.broken = Some(why.clone());
        Error::new(ErrorKind::InvalidInput, op, why)
    }

    async fn read_response(
        &mut self,
        op: &'static str,
        waiting_for: &str,
    ) -> Result<ResponseFrame> {
        let read = tokio::time::timeout(self.timeout, codec::read_frame(&mut self.stream)).await;
        let payload = match read {
            Err(_) => {
                self.broken = Some(format!(
                    "no answer to {waiting_for} within {:?}",
                    self.timeout
                ));
                return Err(Error::new(
                    ErrorKind::Timeout,
                    op,
                    format!("the supervisor did not answer within {:?}", self.timeout),
                )
                .with("request", waiting_for)
                .with_retryable(false));
            }
            Ok(Err(e)) => {
                self.broken = Some(e.message().to_string());
                return Err(e.with_operation(op).with("request", waiting_for));
            }
            Ok(Ok(None)) => {
                self.broken = Some("the supervisor closed the connection".into());
                return Err(Error::new(
                    ErrorKind::Io,
                    op,
                    "the supervisor closed the connection before answering",
                )
                .with("request", waiting_for));
            }
            Ok(Ok(Some(p))) => p,
        };
        codec::decode_response(&payload).map_err(|e| {
            self.broken = Some(e.message().to_string());
            e.with_operation(op).with("request", waiting_for)
        })
    }
}

fn target_of(request: &ToSupervisor) -> Option<(&'static str, String)> {
    match request {
        ToSupervisor::GetConnection(m) => Some(("conn_id", m.conn_id.clone())),
        ToSupervisor::GetVariable(m) => Some(("key", m.key.clone())),
        ToSupervisor::PutVariable(m) => Some(("key", m.key.clone())),
        ToSupervisor::DeleteVariable(m) => Some(("key", m.key.clone())),
        ToSupervisor::GetXCom(m) => Some(("key", m.key.clone())),
        ToSupervisor::SetXCom(m) => Some(("key", m.key.clone())),
        _ => None,
    }
}

fn unexpected(op: &'static str, wanted: &str, got: Option<&FromSupervisor>) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        op,
        format!(
            "the supervisor answered {} instead of {wanted}",
            got.map_or("nothing", FromSupervisor::type_name)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airflow::codec::Datetimes;
    use crate::airflow::messages::{SucceedTask, TaskState, TerminalState};
    use chrono::Utc;
    use serde_json::json;
    use tokio::io::DuplexStream;

    async fn answer(s: &mut DuplexStream, id: u64, body: Option<Value>, error: Option<Value>) {
        let p = codec::encode_response(id, body.as_ref(), error.as_ref(), Datetimes::Timestamps)
            .unwrap();
        codec::write_frame(s, &p).await.unwrap();
    }

    async fn next_request(s: &mut DuplexStream) -> codec::RequestFrame {
        codec::decode_request(&codec::read_frame(s).await.unwrap().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn requests_count_ids_from_one_and_map_both_error_slots() {
        let (a, mut sup) = tokio::io::duplex(4096);
        let mut comm = Comm::new(a);
        let server = tokio::spawn(async move {
            let r = next_request(&mut sup).await;
            assert_eq!(
                (r.id, r.body.as_ref().unwrap()["type"].as_str()),
                (1, Some("GetVariable"))
            );
            answer(
                &mut sup,
                1,
                Some(json!({"type": "VariableResult", "key": "k", "value": "v"})),
                None,
            )
            .await;
            let r = next_request(&mut sup).await;
            assert_eq!(r.id, 2);
            answer(
                &mut sup,
                2,
                Some(json!({"type": "ErrorResponse", "error": "VARIABLE_NOT_FOUND", "detail": {"key": "nope"}})),
                None,
            )
            .await;
            let r = next_request(&mut sup).await;
            assert_eq!(r.id, 3);
            answer(
                &mut sup,
                3,
                None,
                Some(json!({"type": "ErrorResponse", "error": "API_SERVER_ERROR",
                            "detail": {"status_code": 500, "message": "boom"}})),
            )
            .await;
            let r = next_request(&mut sup).await;
            assert_eq!(r.body.unwrap()["type"], "SucceedTask");
            answer(&mut sup, r.id, None, None).await;
            sup
        });
        assert_eq!(comm.get_variable("k").await.unwrap().as_deref(), Some("v"));
        let err = comm.get_variable("nope").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(
            crate::airflow::messages::airflow_error(&err),
            Some("VARIABLE_NOT_FOUND")
        );
        assert_eq!(err.context("key"), Some("nope"));
        let err = comm.get_connection("pg").await.unwrap_err();
        assert_eq!(
            (err.kind(), err.context("status_code")),
            (ErrorKind::Unavailable, Some("500"))
        );
        assert!(err.is_retryable());
        comm.send_terminal(SucceedTask::new(Utc::now()))
            .await
            .unwrap();
        let err = comm.get_variable("k").await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "no request after the terminal message"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_socket_mid_request_is_an_error_and_breaks_the_comm() {
        let (a, mut sup) = tokio::io::duplex(4096);
        let mut comm = Comm::new(a);
        let server = tokio::spawn(async move {
            next_request(&mut sup).await;
            drop(sup);
        });
        let err = comm.get_connection("pg").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert_eq!(err.context("conn_id"), Some("pg"));
        assert_eq!(err.context("request"), Some("GetConnection"));
        server.await.unwrap();
        let err = comm.get_variable("k").await.unwrap_err();
        assert!(err.message().contains("broken"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_supervisor_times_out() {
        let (a, mut sup) = tokio::io::duplex(4096);
        let mut comm = Comm::new(a).with_timeout(Duration::from_secs(2));
        let server = tokio::spawn(async move {
            next_request(&mut sup).await;
            sup // kept open, never answered
        });
        let err = comm.get_variable("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        drop(server.await.unwrap());
    }

    #[tokio::test]
    async fn a_reply_with_another_id_breaks_the_comm() {
        let (a, mut sup) = tokio::io::duplex(4096);
        let mut comm = Comm::new(a);
        let server = tokio::spawn(async move {
            next_request(&mut sup).await;
            answer(&mut sup, 9, None, None).await;
            sup
        });
        let err = comm
            .set_xcom(SetXCom {
                key: "k".into(),
                value: json!(1),
                dag_id: "d".into(),
                run_id: "r".into(),
                task_id: "t".into(),
                map_index: Some(-1),
                dag_result: false,
                mapped_length: None,
            })
            .await
            .unwrap_err();
        assert!(err.message().contains("id 9"), "{err}");
        let _sup = server.await.unwrap();
        assert!(
            comm.get_variable("k")
                .await
                .unwrap_err()
                .message()
                .contains("broken")
        );
    }

    #[tokio::test]
    async fn startup_must_come_first_with_id_zero() {
        let (a, mut sup) = tokio::io::duplex(4096);
        let mut comm = Comm::new(a);
        answer(
            &mut sup,
            0,
            Some(json!({"type": "VariableResult", "key": "k"})),
            None,
        )
        .await;
        let err = comm.read_startup().await.unwrap_err();
        assert!(err.message().contains("not StartupDetails"), "{err}");
        drop(sup);
        let err = comm
            .send_terminal(TaskState {
                state: TerminalState::Failed,
                end_date: None,
                rendered_map_index: None,
            })
            .await;
        assert!(err.is_err(), "nobody answers a closed socket");
        let err = comm
            .send_terminal(GetVariable { key: "k".into() })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
