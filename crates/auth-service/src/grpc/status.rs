//! Errors as gRPC statuses (SPEC §7): one `match` from [`Error`] to a code. The stable code of
//! the HTTP problem leads the message (`email_taken: …`) and is in the metadata `x-error-code`;
//! invalid fields are listed in `x-field-errors`, limits carry `retry-after`. Internal failures
//! are logged here with the request id and answered without their cause.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::error::Error;

/// The metadata naming the stable error code.
pub const ERROR_CODE: &str = "x-error-code";

fn code_of(error: &Error) -> Code {
    match error {
        Error::Invalid(_)
        | Error::MalformedBody(_)
        | Error::UnsupportedMediaType
        | Error::PayloadTooLarge
        | Error::InvalidToken
        | Error::InvalidMfaCode
        | Error::InvalidPasskey
        | Error::InvalidCeremony
        | Error::PasskeyCounterRegressed => Code::InvalidArgument,
        Error::Unauthorized
        | Error::InvalidCredentials
        | Error::InvalidRefreshToken
        | Error::RefreshTokenReused
        | Error::InvalidMfaToken => Code::Unauthenticated,
        Error::Forbidden
        | Error::CsrfRejected
        | Error::AccountDisabled
        | Error::EmailNotVerified
        | Error::MfaEnrollmentRequired
        | Error::FreshFactorRequired
        | Error::SessionRequired
        | Error::InsufficientScope { .. } => Code::PermissionDenied,
        Error::ApiKeyNotFound => Code::NotFound,
        Error::TooManyApiKeys => Code::FailedPrecondition,
        Error::NotFound
        | Error::SessionNotFound
        | Error::UserNotFound
        | Error::RoleNotFound
        | Error::TerritoryNotFound
        | Error::PasskeyNotFound => Code::NotFound,
        Error::MethodNotAllowed => Code::Unimplemented,
        Error::EmailTaken | Error::UsernameTaken | Error::RoleExists | Error::TerritoryExists => {
            Code::AlreadyExists
        }
        Error::MfaAlreadyEnrolled | Error::PasskeyExists => Code::AlreadyExists,
        Error::LastAdmin
        | Error::BuiltInRole
        | Error::NoPendingEnrollment
        | Error::MfaNotEnrolled => Code::FailedPrecondition,
        Error::TooManyAttempts { .. } | Error::RateLimited { .. } | Error::FactorLocked { .. } => {
            Code::ResourceExhausted
        }
        Error::ClientNotFound => Code::NotFound,
        Error::UserTokenRequired => Code::PermissionDenied,
        Error::OAuth(crate::error::OAuthError::InvalidClient { .. }) => Code::Unauthenticated,
        Error::OAuth(_) => Code::InvalidArgument,
        // As over HTTP (503): the caller may try again.
        Error::Timeout | Error::Unavailable(_) => Code::Unavailable,
        Error::Internal(_) => Code::Internal,
    }
}

/// The status answering `error` in the call `request_id`.
pub fn status_of(error: &Error, request_id: &str) -> Status {
    let code = code_of(error);
    let stable = error.code();
    // SPEC §4: an internal failure says nothing of its cause, only the request id.
    let detail = match error {
        Error::Internal(source) => {
            tracing::error!(request.id = request_id, error = %format!("{source:#}"), "request failed");
            format!("internal error (request id {request_id})")
        }
        Error::Invalid(errors) => {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            format!("{error}: {}", fields.join("; "))
        }
        other => other.to_string(),
    };
    let mut status = Status::new(code, format!("{stable}: {detail}"));
    let metadata = status.metadata_mut();
    metadata.insert(ERROR_CODE, MetadataValue::from_static(stable));
    insert(metadata, "x-request-id", request_id);
    match error {
        Error::Invalid(errors) => {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| format!("{}:{}", e.field, e.code))
                .collect();
            insert(metadata, "x-field-errors", &fields.join(","));
        }
        Error::TooManyAttempts { retry_after }
        | Error::RateLimited { retry_after }
        | Error::FactorLocked { retry_after } => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            metadata.insert("retry-after", MetadataValue::from(seconds.max(1)));
        }
        _ => {}
    }
    status
}

/// Metadata values are ASCII; one that is not (never expected here) is left out.
fn insert(metadata: &mut MetadataMap, key: &'static str, value: &str) {
    if let Ok(value) = value.parse() {
        metadata.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Dependency;

    #[test]
    fn every_error_maps_to_its_code_and_names_its_stable_code() {
        let cases = [
            (Error::EmailTaken, Code::AlreadyExists),
            (Error::InvalidCredentials, Code::Unauthenticated),
            (Error::RefreshTokenReused, Code::Unauthenticated),
            (
                Error::invalid("email", "required", "is required"),
                Code::InvalidArgument,
            ),
            (Error::PayloadTooLarge, Code::InvalidArgument),
            (Error::EmailNotVerified, Code::PermissionDenied),
            (Error::UserNotFound, Code::NotFound),
            (
                Error::RateLimited {
                    retry_after: Duration::from_secs(3),
                },
                Code::ResourceExhausted,
            ),
            (Error::Unavailable(Dependency::Database), Code::Unavailable),
            (Error::Internal(anyhow::anyhow!("boom")), Code::Internal),
        ];

        for (error, code) in cases {
            let stable = error.code();
            let status = status_of(&error, "req-1");

            assert_eq!(status.code(), code, "{stable}");
            assert!(status.message().starts_with(&format!("{stable}: ")));
            assert_eq!(status.metadata().get(ERROR_CODE).unwrap(), stable);
            assert_eq!(status.metadata().get("x-request-id").unwrap(), "req-1");
        }
    }

    #[test]
    fn limits_carry_retry_after_and_fields_are_listed() {
        let limited = status_of(
            &Error::TooManyAttempts {
                retry_after: Duration::from_millis(1500),
            },
            "r",
        );
        let invalid = status_of(
            &Error::Invalid(vec![
                crate::error::FieldError::new("email", "required", "is required"),
                crate::error::FieldError::new("password", "too_short", "too short"),
            ]),
            "r",
        );

        assert_eq!(limited.metadata().get("retry-after").unwrap(), "2");
        assert_eq!(
            invalid.metadata().get("x-field-errors").unwrap(),
            "email:required,password:too_short"
        );
        assert!(invalid.message().contains("password: too short"));
    }

    #[test]
    fn internal_statuses_hide_their_cause() {
        let status = status_of(&Error::Internal(anyhow::anyhow!("secret detail")), "req-9");

        assert!(!status.message().contains("secret"));
        assert!(status.message().contains("req-9"));
    }
}
