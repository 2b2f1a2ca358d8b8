//! Request bodies: JSON objects whose field names match in any case, as the original Go service
//! accepted them (`{"Text": …}` and `{"text": …}` alike). Every way a body can be wrong becomes a
//! JSON error: 415 for another content type, 413 for too large, 408 for too slow, 400 for the rest.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header::CONTENT_TYPE},
};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body deserialized into `T`, whose field names must be lower-case.
pub struct CaseInsensitiveJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CaseInsensitiveJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(&request) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        // Bytes honours the router's body limit and answers 413 beyond it.
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            // A body cut short by the server's body deadline: the client was too slow.
            if crate::error::caused_by::<tower_http::timeout::TimeoutError>(&rejection) {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")
            } else {
                ApiError::new(rejection.status(), rejection.body_text())
            }
        })?;
        let ObjectFields(fields) =
            serde_json::from_slice(&body).map_err(|error| ApiError::bad_request(format!("malformed JSON: {error}")))?;
        let fields = lowercase_field_names(fields.ok_or_else(|| ApiError::bad_request("expected a JSON object"))?)?;
        let parsed = serde_json::from_value(Value::Object(fields))
            .map_err(|error| ApiError::bad_request(format!("invalid request body: {error}")))?;
        Ok(Self(parsed))
    }
}

fn has_json_content_type(request: &Request) -> bool {
    let Some(content_type) = request.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `{"Text": "a", "DONE": true}` becomes `{"text": "a", "done": true}`; a name given twice, in
/// the same case or not, is ambiguous and refused.
fn lowercase_field_names(fields: Vec<(String, Value)>) -> Result<Map<String, Value>, ApiError> {
    let mut lowercased = Map::new();
    for (name, value) in fields {
        let lower = name.to_lowercase();
        if lowercased.insert(lower.clone(), value).is_some() {
            return Err(ApiError::bad_request(format!("field {lower:?} is given more than once")));
        }
    }
    Ok(lowercased)
}

/// The fields of a JSON object in the order written, duplicates included (a `Map` would keep
/// only the last of them silently); `None` for any other JSON value.
struct ObjectFields(Option<Vec<(String, Value)>>);

impl<'de> Deserialize<'de> for ObjectFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectFieldsVisitor)
    }
}

struct ObjectFieldsVisitor;

impl<'de> Visitor<'de> for ObjectFieldsVisitor {
    type Value = ObjectFields;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectFields, A::Error> {
        let mut fields = Vec::new();
        while let Some(field) = map.next_entry()? {
            fields.push(field);
        }
        Ok(ObjectFields(Some(fields)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectFields, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ObjectFields(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
    fn visit_unit<E>(self) -> Result<ObjectFields, E> {
        Ok(ObjectFields(None))
    }
}
