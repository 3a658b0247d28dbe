//! [`ApiError`]: every failure of an AWS request, and the one place that turns it into the AWS
//! error envelope: for AWS JSON 1.1 (SSM Contacts) `__type`, `Message`, the modelled members,
//! the status code and the `X-Amzn-ErrorType` header ([`ApiError::into_response`]); for
//! restJson1 (SSM Incidents) the `X-Amzn-ErrorType` header, the status code and a body of
//! `message` and the modelled members in camelCase ([`ApiError::into_rest_response`]).

use crate::wire::FieldError;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use std::fmt;

/// The content type of every AWS JSON 1.1 response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The content type of a restJson1 response with a body.
pub const REST_CONTENT_TYPE: &str = "application/json";

/// The `serviceCode` of restJson1 errors: the only value of SSM Incidents' `ServiceCode`.
pub const REST_SERVICE_CODE: &str = "ssm-incidents";

/// Why a request was rejected as a `ValidationException` (the model's
/// `ValidationExceptionReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationReason {
    /// `X-Amz-Target` names no operation of the service.
    UnknownOperation,
    /// The body is not a JSON object.
    CannotParse,
    /// One or more members break the model's constraints (see the fields).
    FieldValidationFailed,
    /// Anything else (including operations Muster does not implement yet).
    Other,
}

impl ValidationReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            ValidationReason::UnknownOperation => "UNKNOWN_OPERATION",
            ValidationReason::CannotParse => "CANNOT_PARSE",
            ValidationReason::FieldValidationFailed => "FIELD_VALIDATION_FAILED",
            ValidationReason::Other => "OTHER",
        }
    }
}

/// A resource that depends on the one a `ConflictException` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependentEntity {
    /// How it depends on it, e.g. `"STAGE"`.
    pub relation_type: String,
    /// The ARNs of the dependents.
    pub dependent_resource_ids: Vec<String>,
}

/// An error answer of the AWS JSON 1.1 API. Each variant is one modelled exception (or, for
/// [`ApiError::Auth`], one of the authentication errors every AWS service shares).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400 `ValidationException`.
    Validation {
        message: String,
        reason: ValidationReason,
        fields: Vec<FieldError>,
    },
    /// 404 `ResourceNotFoundException`.
    NotFound {
        message: String,
        resource_id: String,
        resource_type: String,
    },
    /// 409 `ConflictException`.
    Conflict {
        message: String,
        resource_id: String,
        resource_type: String,
        dependent_entities: Vec<DependentEntity>,
    },
    /// 402 `ServiceQuotaExceededException`.
    ServiceQuotaExceeded {
        message: String,
        resource_id: Option<String>,
        resource_type: Option<String>,
        quota_code: String,
        service_code: String,
    },
    /// 403 `AccessDeniedException`.
    AccessDenied { message: String },
    /// 429 `ThrottlingException`; `retry_after_seconds` becomes the `Retry-After` header.
    Throttling {
        message: String,
        retry_after_seconds: Option<i32>,
    },
    /// 500 `InternalServerException`. The message is generic: details go to the log, never
    /// to the client.
    Internal { message: String },
    /// An authentication failure: `MissingAuthenticationTokenException` (403),
    /// `UnrecognizedClientException` (403), `InvalidSignatureException` (403),
    /// `IncompleteSignatureException` (400), `SignatureDoesNotMatch` (403), ...
    Auth {
        type_name: &'static str,
        status: u16,
        message: String,
    },
}

/// The AWS rendering of an application error. Messages are the application's own: an
/// invalid member keeps its path as the field name, so what the API said before the
/// application layer existed it says byte for byte.
impl From<muster_app::AppError> for ApiError {
    fn from(e: muster_app::AppError) -> ApiError {
        use muster_app::AppError;
        match e {
            AppError::Invalid(issues) => ApiError::validation(
                issues
                    .into_iter()
                    .map(|i| FieldError {
                        name: i.path,
                        message: i.message,
                    })
                    .collect(),
            ),
            AppError::NotFound { kind, id } => ApiError::not_found(kind, id),
            AppError::Conflict {
                kind,
                id,
                message,
                dependents,
            } => ApiError::Conflict {
                message,
                resource_id: id,
                resource_type: kind,
                dependent_entities: dependents
                    .into_iter()
                    .map(|d| DependentEntity {
                        relation_type: d.relation,
                        dependent_resource_ids: d.ids,
                    })
                    .collect(),
            },
            AppError::Quota {
                message,
                kind,
                id,
                quota,
            } => ApiError::ServiceQuotaExceeded {
                message,
                resource_id: id,
                resource_type: kind,
                quota_code: quota,
                service_code: "ssm-contacts".into(),
            },
            // A device that opted out is a request AWS would refuse as invalid, not a fault.
            AppError::OptedOut { message } => ApiError::other(message),
            AppError::Busy {
                message,
                retry_after_seconds,
            } => ApiError::Throttling {
                message,
                retry_after_seconds: Some(i32::from(retry_after_seconds)),
            },
            AppError::Internal { message } => ApiError::Internal { message },
        }
    }
}

impl ApiError {
    /// A `ValidationException` (`FIELD_VALIDATION_FAILED`) listing `fields`, with AWS's message:
    /// `2 validation errors detected: Value at 'Alias' failed to satisfy constraint: ...; Value at ...`.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = if fields.is_empty() {
            "Validation failed".to_owned()
        } else {
            let n = fields.len();
            let detail: Vec<String> = fields
                .iter()
                .map(|f| {
                    format!(
                        "Value at '{}' failed to satisfy constraint: {}",
                        f.name, f.message
                    )
                })
                .collect();
            format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                detail.join("; ")
            )
        };
        ApiError::Validation {
            message,
            reason: ValidationReason::FieldValidationFailed,
            fields,
        }
    }

    /// A `ValidationException` about one member.
    pub fn field(name: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(name, message)])
    }

    /// A `ValidationException` (`CANNOT_PARSE`): the body is not a JSON object.
    pub fn cannot_parse(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            reason: ValidationReason::CannotParse,
            fields: Vec::new(),
        }
    }

    /// A `ValidationException` (`UNKNOWN_OPERATION`) for an `X-Amz-Target` naming no operation.
    pub fn unknown_operation(target: &str) -> Self {
        let message = if target.is_empty() {
            "Unknown operation: the X-Amz-Target header is missing".to_owned()
        } else {
            format!("Unknown operation {target}")
        };
        ApiError::Validation {
            message,
            reason: ValidationReason::UnknownOperation,
            fields: Vec::new(),
        }
    }

    /// A `ValidationException` (`OTHER`, a 400 rather than a 5xx) for an operation of the model
    /// that this server does not implement yet.
    pub fn not_implemented(operation: &str) -> Self {
        ApiError::other(format!(
            "{operation} is not implemented by this Muster server yet"
        ))
    }

    /// A `ValidationException` with reason `OTHER`.
    pub fn other(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            reason: ValidationReason::Other,
            fields: Vec::new(),
        }
    }

    /// A `ResourceNotFoundException`; `resource_type` is the AWS one (`CONTACT`,
    /// `CONTACT_CHANNEL`, `ENGAGEMENT`, `PAGE`, `ROTATION`, ...), and the message reads
    /// "Contact channel arn:... does not exist".
    pub fn not_found(resource_type: impl Into<String>, resource_id: impl Into<String>) -> Self {
        let resource_type = resource_type.into();
        let resource_id = resource_id.into();
        ApiError::NotFound {
            message: format!(
                "{} {resource_id} does not exist",
                readable_type(&resource_type)
            ),
            resource_id,
            resource_type,
        }
    }

    /// A `ConflictException` without dependent entities.
    pub fn conflict(
        resource_type: impl Into<String>,
        resource_id: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Conflict {
            message: message.into(),
            resource_id: resource_id.into(),
            resource_type: resource_type.into(),
            dependent_entities: Vec::new(),
        }
    }

    /// An `AccessDeniedException`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        ApiError::AccessDenied {
            message: message.into(),
        }
    }

    /// An `InternalServerException` with a generic message. Log the cause (with `tracing`)
    /// where it happened: it must not reach the client.
    pub fn internal() -> Self {
        ApiError::Internal {
            message: "An internal error occurred; it has been logged".to_owned(),
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        let code = match self {
            ApiError::Validation { .. } => 400,
            ApiError::NotFound { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::ServiceQuotaExceeded { .. } => 402,
            ApiError::AccessDenied { .. } => 403,
            ApiError::Throttling { .. } => 429,
            ApiError::Internal { .. } => 500,
            ApiError::Auth { status, .. } => *status,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The error's `__type` (and `X-Amzn-ErrorType`).
    pub fn type_name(&self) -> &str {
        match self {
            ApiError::Validation { .. } => "ValidationException",
            ApiError::NotFound { .. } => "ResourceNotFoundException",
            ApiError::Conflict { .. } => "ConflictException",
            ApiError::ServiceQuotaExceeded { .. } => "ServiceQuotaExceededException",
            ApiError::AccessDenied { .. } => "AccessDeniedException",
            ApiError::Throttling { .. } => "ThrottlingException",
            ApiError::Internal { .. } => "InternalServerException",
            ApiError::Auth { type_name, .. } => type_name,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Validation { message, .. }
            | ApiError::NotFound { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::ServiceQuotaExceeded { message, .. }
            | ApiError::AccessDenied { message }
            | ApiError::Throttling { message, .. }
            | ApiError::Internal { message }
            | ApiError::Auth { message, .. } => message,
        }
    }

    /// The JSON body: `{"__type": ..., "Message": ..., <modelled members>}`; optional members
    /// are left out when absent or empty.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("__type".into(), Value::from(self.type_name()));
        body.insert("Message".into(), Value::from(self.message()));
        match self {
            ApiError::Validation { reason, fields, .. } => {
                body.insert("Reason".into(), Value::from(reason.as_str()));
                if !fields.is_empty() {
                    body.insert("Fields".into(), json!(fields));
                }
            }
            ApiError::NotFound {
                resource_id,
                resource_type,
                ..
            } => {
                body.insert("ResourceId".into(), Value::from(resource_id.as_str()));
                body.insert("ResourceType".into(), Value::from(resource_type.as_str()));
            }
            ApiError::Conflict {
                resource_id,
                resource_type,
                dependent_entities,
                ..
            } => {
                body.insert("ResourceId".into(), Value::from(resource_id.as_str()));
                body.insert("ResourceType".into(), Value::from(resource_type.as_str()));
                if !dependent_entities.is_empty() {
                    let entities: Vec<Value> = dependent_entities
                        .iter()
                        .map(|d| {
                            json!({
                                "RelationType": d.relation_type,
                                "DependentResourceIds": d.dependent_resource_ids,
                            })
                        })
                        .collect();
                    body.insert("DependentEntities".into(), Value::Array(entities));
                }
            }
            ApiError::ServiceQuotaExceeded {
                resource_id,
                resource_type,
                quota_code,
                service_code,
                ..
            } => {
                if let Some(id) = resource_id {
                    body.insert("ResourceId".into(), Value::from(id.as_str()));
                }
                if let Some(t) = resource_type {
                    body.insert("ResourceType".into(), Value::from(t.as_str()));
                }
                body.insert("QuotaCode".into(), Value::from(quota_code.as_str()));
                body.insert("ServiceCode".into(), Value::from(service_code.as_str()));
            }
            // RetryAfterSeconds is modelled as the Retry-After header, not a body member.
            ApiError::AccessDenied { .. }
            | ApiError::Throttling { .. }
            | ApiError::Internal { .. }
            | ApiError::Auth { .. } => {}
        }
        Value::Object(body)
    }

    /// The complete HTTP response.
    pub fn into_response(self, request_id: &str) -> Response {
        let status = self.status();
        let body = self.body().to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(self.type_name()) {
            headers.insert("x-amzn-errortype", v);
        }
        if let ApiError::Throttling {
            retry_after_seconds: Some(secs),
            ..
        } = &self
        {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        response
    }
}

impl ApiError {
    /// The restJson1 `message`. SSM Incidents' `ValidationException` has no field list, so
    /// for field errors the message names every failing member with its path:
    /// `2 validation errors detected: incidentTemplate.title: must be at most 200 characters long; impact: is required`.
    pub fn rest_message(&self) -> String {
        match self {
            ApiError::Validation { fields, .. } if !fields.is_empty() => {
                let n = fields.len();
                let detail: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.message))
                    .collect();
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    detail.join("; ")
                )
            }
            _ => self.message().to_owned(),
        }
    }

    /// The restJson1 JSON body: `{"message": ..., <modelled members>}` with SSM Incidents'
    /// member names; optional members are left out when absent.
    pub fn rest_body(&self) -> Value {
        let mut body = Map::new();
        body.insert("message".into(), Value::from(self.rest_message()));
        match self {
            ApiError::NotFound {
                resource_id,
                resource_type,
                ..
            }
            | ApiError::Conflict {
                resource_id,
                resource_type,
                ..
            } => {
                body.insert(
                    "resourceIdentifier".into(),
                    Value::from(resource_id.as_str()),
                );
                body.insert("resourceType".into(), Value::from(resource_type.as_str()));
            }
            ApiError::ServiceQuotaExceeded {
                resource_id,
                resource_type,
                quota_code,
                ..
            } => {
                if let Some(id) = resource_id {
                    body.insert("resourceIdentifier".into(), Value::from(id.as_str()));
                }
                if let Some(t) = resource_type {
                    body.insert("resourceType".into(), Value::from(t.as_str()));
                }
                body.insert("serviceCode".into(), Value::from(REST_SERVICE_CODE));
                body.insert("quotaCode".into(), Value::from(quota_code.as_str()));
            }
            ApiError::Throttling { .. } => {
                body.insert("serviceCode".into(), Value::from(REST_SERVICE_CODE));
                // Required by the model; Muster's throttling is not a per-quota limit.
                body.insert("quotaCode".into(), Value::from(""));
            }
            ApiError::Validation { .. }
            | ApiError::AccessDenied { .. }
            | ApiError::Internal { .. }
            | ApiError::Auth { .. } => {}
        }
        Value::Object(body)
    }

    /// The complete restJson1 response: the status, `X-Amzn-ErrorType: <shape name>`,
    /// `x-amzn-RequestId`, `content-type: application/json` and [`ApiError::rest_body`]
    /// (`Retry-After` too for a throttling error that has one).
    pub fn into_rest_response(&self, request_id: &str) -> Response {
        let status = self.status();
        let body = self.rest_body().to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(REST_CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if let Ok(v) = HeaderValue::from_str(self.type_name()) {
            headers.insert("x-amzn-errortype", v);
        }
        if let ApiError::Throttling {
            retry_after_seconds: Some(secs),
            ..
        } = self
        {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        response
    }
}

/// `CONTACT_CHANNEL` → `Contact channel`; other spellings are kept as they are.
fn readable_type(resource_type: &str) -> String {
    muster_app::error::readable_kind(resource_type)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ssm_contacts::ERROR_HTTP_STATUS;

    fn all_variants() -> Vec<ApiError> {
        vec![
            ApiError::field("Alias", "is required"),
            ApiError::not_found(
                "CONTACT",
                "arn:aws:ssm-contacts:us-east-1:000000000000:contact/a",
            ),
            ApiError::Conflict {
                message: "in use".into(),
                resource_id: "arn:x".into(),
                resource_type: "CONTACT".into(),
                dependent_entities: vec![DependentEntity {
                    relation_type: "STAGE".into(),
                    dependent_resource_ids: vec!["arn:y".into()],
                }],
            },
            ApiError::ServiceQuotaExceeded {
                message: "too many".into(),
                resource_id: None,
                resource_type: Some("CONTACT".into()),
                quota_code: "q".into(),
                service_code: "ssm-contacts".into(),
            },
            ApiError::access_denied("no"),
            ApiError::Throttling {
                message: "slow down".into(),
                retry_after_seconds: Some(3),
            },
            ApiError::internal(),
        ]
    }

    /// The statuses hard-coded in `status()` are the model's `@httpError` values.
    #[test]
    fn statuses_agree_with_the_model() {
        for e in all_variants() {
            let modelled = ERROR_HTTP_STATUS
                .iter()
                .find(|(name, _)| *name == e.type_name())
                .unwrap_or_else(|| panic!("{} is not an error shape of the model", e.type_name()));
            assert_eq!(e.status().as_u16(), modelled.1, "{}", e.type_name());
        }
    }

    /// Re-reads a body with the generated error struct of the model and writes it back: the
    /// member names and shapes of the hand-written bodies are the model's.
    fn model_round_trip<T>(body: &Value) -> Value
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let mut members = body.as_object().expect("object").clone();
        members.remove("__type");
        let members = Value::Object(members);
        let typed: T = serde_json::from_value(members.clone()).expect("body fits the model");
        serde_json::to_value(typed).expect("serialises")
    }

    #[test]
    fn bodies_match_the_model_shapes() {
        use crate::wire::ssm_contacts as w;
        let strip = |body: &Value| {
            let mut m = body.as_object().unwrap().clone();
            m.remove("__type");
            Value::Object(m)
        };
        let v = all_variants();
        let b = v[0].body();
        assert_eq!(model_round_trip::<w::ValidationException>(&b), strip(&b));
        for reason in [
            ValidationReason::UnknownOperation,
            ValidationReason::CannotParse,
            ValidationReason::FieldValidationFailed,
            ValidationReason::Other,
        ] {
            assert!(w::ValidationExceptionReason::VALUES.contains(&reason.as_str()));
        }
        let b = v[1].body();
        assert_eq!(
            model_round_trip::<w::ResourceNotFoundException>(&b),
            strip(&b)
        );
        let b = v[2].body();
        assert_eq!(model_round_trip::<w::ConflictException>(&b), strip(&b));
        let b = v[3].body();
        assert_eq!(
            model_round_trip::<w::ServiceQuotaExceededException>(&b),
            strip(&b)
        );
        let b = v[4].body();
        assert_eq!(model_round_trip::<w::AccessDeniedException>(&b), strip(&b));
    }

    #[test]
    fn validation_body_and_message() {
        let e = ApiError::validation(vec![
            FieldError::new("Alias", "must match the pattern ^[a-z0-9_\\-]*$"),
            FieldError::required("Type"),
        ]);
        assert_eq!(
            e.body(),
            json!({
                "__type": "ValidationException",
                "Message": "2 validation errors detected: Value at 'Alias' failed to satisfy constraint: must match the pattern ^[a-z0-9_\\-]*$; Value at 'Type' failed to satisfy constraint: is required",
                "Reason": "FIELD_VALIDATION_FAILED",
                "Fields": [
                    {"Name": "Alias", "Message": "must match the pattern ^[a-z0-9_\\-]*$"},
                    {"Name": "Type", "Message": "is required"},
                ],
            })
        );
        let one = ApiError::field("Plan", "is required");
        assert_eq!(
            one.message(),
            "1 validation error detected: Value at 'Plan' failed to satisfy constraint: is required"
        );
        assert_eq!(
            one.to_string(),
            format!("ValidationException: {}", one.message())
        );
    }

    #[test]
    fn other_validation_reasons_have_no_fields() {
        let cases = [
            (
                ApiError::cannot_parse("bad json"),
                "CANNOT_PARSE",
                "bad json".to_owned(),
            ),
            (
                ApiError::unknown_operation("SSMContacts.Nope"),
                "UNKNOWN_OPERATION",
                "Unknown operation SSMContacts.Nope".to_owned(),
            ),
            (
                ApiError::not_implemented("DescribePage"),
                "OTHER",
                "DescribePage is not implemented by this Muster server yet".to_owned(),
            ),
            (ApiError::other("too big"), "OTHER", "too big".to_owned()),
        ];
        for (e, reason, message) in cases {
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert_eq!(
                e.body(),
                json!({"__type": "ValidationException", "Message": message, "Reason": reason})
            );
        }
    }

    #[test]
    fn not_found_body() {
        let e = ApiError::not_found(
            "CONTACT_CHANNEL",
            "arn:aws:ssm-contacts:us-east-1:1:contact-channel/a/b",
        );
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.body(),
            json!({
                "__type": "ResourceNotFoundException",
                "Message": "Contact channel arn:aws:ssm-contacts:us-east-1:1:contact-channel/a/b does not exist",
                "ResourceId": "arn:aws:ssm-contacts:us-east-1:1:contact-channel/a/b",
                "ResourceType": "CONTACT_CHANNEL",
            })
        );
        let odd = ApiError::not_found("Rotation", "x");
        assert_eq!(odd.message(), "Rotation x does not exist");
    }

    #[test]
    fn conflict_body_lists_dependents_only_when_present() {
        let with = &all_variants()[2];
        assert_eq!(with.status(), StatusCode::CONFLICT);
        assert_eq!(
            with.body(),
            json!({
                "__type": "ConflictException",
                "Message": "in use",
                "ResourceId": "arn:x",
                "ResourceType": "CONTACT",
                "DependentEntities": [{"RelationType": "STAGE", "DependentResourceIds": ["arn:y"]}],
            })
        );
        let without = ApiError::conflict("CONTACT", "arn:x", "exists");
        assert_eq!(
            without.body(),
            json!({"__type": "ConflictException", "Message": "exists", "ResourceId": "arn:x", "ResourceType": "CONTACT"})
        );
    }

    #[test]
    fn quota_access_throttling_internal_auth_bodies() {
        let v = all_variants();
        assert_eq!(
            v[3].body(),
            json!({
                "__type": "ServiceQuotaExceededException",
                "Message": "too many",
                "ResourceType": "CONTACT",
                "QuotaCode": "q",
                "ServiceCode": "ssm-contacts",
            })
        );
        assert_eq!(v[3].status().as_u16(), 402);
        assert_eq!(
            v[4].body(),
            json!({"__type": "AccessDeniedException", "Message": "no"})
        );
        assert_eq!(v[4].status(), StatusCode::FORBIDDEN);
        assert_eq!(
            v[5].body(),
            json!({"__type": "ThrottlingException", "Message": "slow down"})
        );
        assert_eq!(v[5].status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            v[6].body(),
            json!({"__type": "InternalServerException", "Message": "An internal error occurred; it has been logged"})
        );
        assert_eq!(v[6].status(), StatusCode::INTERNAL_SERVER_ERROR);
        let auth = ApiError::Auth {
            type_name: "IncompleteSignatureException",
            status: 400,
            message: "Authorization header requires 'Credential' parameter.".into(),
        };
        assert_eq!(auth.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            auth.body(),
            json!({
                "__type": "IncompleteSignatureException",
                "Message": "Authorization header requires 'Credential' parameter.",
            })
        );
    }

    #[test]
    fn response_headers_and_body() {
        let resp = all_variants()[5].clone().into_response("req-1");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = resp.headers();
        assert_eq!(h["content-type"], "application/x-amz-json-1.1");
        assert_eq!(h["x-amzn-requestid"], "req-1");
        assert_eq!(h["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(h["retry-after"], "3");

        let resp = ApiError::field("Alias", "is required").into_response("req-2");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ValidationException");
        assert!(resp.headers().get("retry-after").is_none());
    }

    #[test]
    fn a_busy_application_is_a_throttling_exception_with_retry_after() {
        let busy = muster_app::AppError::Busy {
            message: "Too many engagements are being started".into(),
            retry_after_seconds: 2,
        };
        let resp = ApiError::from(busy).into_response("req-3");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(resp.headers()["retry-after"], "2");
    }
}
