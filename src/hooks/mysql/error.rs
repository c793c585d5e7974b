//! Classifying mysql_async errors into gust's [`ErrorKind`]s.
//!
//! Pure: the hook's [`HookScope`](crate::hooks::scope::HookScope) names the operation,
//! adds the conn id and redacts.

use crate::error::{Error, ErrorKind};
use crate::hooks::scope::{Classified, driver_error, innermost};

/// The gust kind of a mysql_async error. No retry override or hint: a kind's
/// default retryability fits (lock wait timeouts and deadlocks are
/// `Unavailable`, so they retry).
pub(crate) fn classify(e: &mysql_async::Error) -> Classified {
    let kind = match e {
        mysql_async::Error::Server(s) => code_kind(s.code),
        mysql_async::Error::Io(_) => ErrorKind::Unavailable,
        mysql_async::Error::Driver(_) => ErrorKind::InvalidInput,
        mysql_async::Error::Url(_) => ErrorKind::Config,
        _ => ErrorKind::Remote,
    };
    (kind, None, None)
}

/// The kind of a server error code.
fn code_kind(code: u16) -> ErrorKind {
    match code {
        // Access denied to a database, for a user, for a table; missing privilege.
        1044 | 1045 | 1142 | 1227 => ErrorKind::Auth,
        // Unknown database, unknown table.
        1049 | 1146 => ErrorKind::NotFound,
        // Duplicate entry.
        1062 => ErrorKind::AlreadyExists,
        // Lock wait timeout, deadlock: try again.
        1205 | 1213 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidInput,
    }
}

/// `e` as a gust error not yet named (the scope names it), `e` chained.
///
/// mysql_async's I/O error repeats its prefix at every level ("Input/output
/// error: Input/output error: Connection refused (os error 111)"): the
/// innermost error alone is the message.
pub(crate) fn into_error(e: mysql_async::Error) -> Error {
    let message = match &e {
        mysql_async::Error::Io(_) => innermost(&e),
        _ => e.to_string(),
    };
    driver_error(classify(&e), message, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_map_to_kinds() {
        for (code, kind) in [
            (1044, ErrorKind::Auth),
            (1045, ErrorKind::Auth),
            (1142, ErrorKind::Auth),
            (1227, ErrorKind::Auth),
            (1049, ErrorKind::NotFound),
            (1146, ErrorKind::NotFound),
            (1062, ErrorKind::AlreadyExists),
            (1205, ErrorKind::Unavailable),
            (1213, ErrorKind::Unavailable),
            (1064, ErrorKind::InvalidInput),
        ] {
            assert_eq!(code_kind(code), kind, "{code}");
        }
    }

    #[test]
    fn io_errors_are_unavailable_with_the_innermost_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = into_error(mysql_async::Error::Io(mysql_async::IoError::Io(io)));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.message(), "Connection refused");
        assert_eq!(e.operation(), "");
    }
}
