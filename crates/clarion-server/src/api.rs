//! The server API: `POST /api/{method}` with a JSON body and
//! `Authorization: apikey <key>`. Success is `200 {"result": ...}`; every
//! failure is `{"error": {"code", "message", "temporary"}}` with the HTTP
//! status: 400 (bad JSON or params), 401 (missing or wrong key), 404
//! (unknown method), 413 (body over `api.max_body_bytes`), and for the
//! hub's own errors (the codes of `docs/protocol.md`) 400, or 503 when
//! temporary.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use clarion_wire::{Data, DisconnectCode, DisconnectPush, ErrorCode, ReplyError, StreamPosition};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::metrics;
use crate::server::App;

/// The API's methods.
pub(crate) const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "presence",
    "presence_stats",
    "history",
    "channels",
    "disconnect",
    "info",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishParams {
    channel: String,
    data: Data,
    /// Publish once per key (see `Hub::publish_idempotent`).
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastParams {
    channels: Vec<String>,
    data: Data,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelParams {
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    channel: String,
    #[serde(default)]
    limit: u32,
    #[serde(default)]
    since: Option<StreamPosition>,
    #[serde(default)]
    reverse: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectParams {
    user: String,
    /// Ask the clients to reconnect (4005) rather than stay away (4502).
    #[serde(default)]
    reconnect: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// An API failure: HTTP status and the error body.
struct ApiError(StatusCode, ReplyError);

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError(status, ReplyError::with_message(code, message))
    }

    fn from_hub(error: ReplyError) -> ApiError {
        let status = match error.temporary {
            true => StatusCode::SERVICE_UNAVAILABLE,
            false => StatusCode::BAD_REQUEST,
        };
        ApiError(status, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// `POST /api/{method}`.
pub(crate) async fn handler(
    State(app): State<Arc<App>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = match handle(&app, &method, &headers, body).await {
        Ok(body) => {
            let json = [(http::header::CONTENT_TYPE, "application/json")];
            (StatusCode::OK, json, body).into_response()
        }
        Err(error) => error.into_response(),
    };
    let label = match METHODS.contains(&method.as_str()) {
        true => method.as_str(),
        false => "unknown",
    };
    metrics::api(label, response.status().as_u16());
    response
}

async fn handle(
    app: &App,
    method: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    authorize(app, headers)?;
    if !METHODS.contains(&method) {
        let message = format!("unknown method {method:?}");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::MethodNotFound,
            message,
        ));
    }
    let body = read_body(body, app.config.api.max_body_bytes).await?;
    dispatch(app, method, &body).await
}

/// `Authorization: apikey <key>`, compared in constant time.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized =
        |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m);
    let Some(key) = app.config.api.key.as_deref() else {
        return Err(unauthorized("the server API is disabled (no api.key)"));
    };
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("apikey "))
        .ok_or_else(|| unauthorized("missing `Authorization: apikey <key>`"))?;
    match constant_time_eq(given.trim().as_bytes(), key.as_bytes()) {
        true => Ok(()),
        false => Err(unauthorized("wrong API key")),
    }
}

fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    let max = clarion_wire::MAX_IDEMPOTENCY_KEY_BYTES;
    if key.is_empty() || key.len() > max {
        let message = format!("idempotency_key must be 1 to {max} bytes");
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            message,
        ));
    }
    Ok(())
}

/// `info`: this node's counters, its identity, the cluster's live nodes
/// (as this node last heard of them) and the broker's health.
async fn info(hub: &clarion_hub::Hub) -> Value {
    let node = hub.node();
    let nodes: Vec<Value> = hub
        .nodes()
        .into_iter()
        .map(|n| {
            json!({
                "id": n.identity.id,
                "name": n.identity.name,
                "clients": n.stats.clients,
                "users": n.stats.users,
                "channels": n.stats.channels,
                "subscriptions": n.stats.subscriptions,
                "last_seen_ms": n.last_seen.elapsed().as_millis() as u64,
            })
        })
        .collect();
    let broker = match hub.broker_health().await {
        Ok(()) => json!({ "healthy": true }),
        Err(e) => json!({ "healthy": false, "error": e.to_string() }),
    };
    let mut value = serde_json::to_value(hub.info()).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("node".into(), json!({ "id": node.id, "name": node.name }));
        object.insert("nodes".into(), Value::Array(nodes));
        object.insert("broker".into(), broker);
    }
    value
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        let message = format!("request body over {limit} bytes");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::LimitExceeded,
            message,
        )
    };
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("reading the body: {e}"),
        )),
    }
}

fn params<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // An empty body is an empty object (`info`, `channels`).
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("bad JSON: {e}"),
        )
    })
}

/// `{"result": value}` as bytes. Publication data is written out as the
/// JSON text it arrived as, never parsed again (so no parser depth limit
/// can fail here on data the server accepted).
fn to_body<T: serde::Serialize>(value: T) -> Result<Vec<u8>, ApiError> {
    #[derive(serde::Serialize)]
    struct Success<T> {
        result: T,
    }
    serde_json::to_vec(&Success { result: value }).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        )
    })
}

async fn dispatch(app: &App, method: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let hub = &app.hub;
    match method {
        "publish" => {
            let p: PublishParams = params(body)?;
            let result = match p.idempotency_key {
                Some(key) => {
                    check_idempotency_key(&key)?;
                    hub.publish_idempotent(&p.channel, p.data, key).await
                }
                None => hub.publish(&p.channel, p.data).await,
            };
            to_body(result.map_err(ApiError::from_hub)?)
        }
        "broadcast" => {
            let p: BroadcastParams = params(body)?;
            let results = hub.broadcast(&p.channels, p.data).await;
            let responses: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(result) => json!({ "result": result }),
                    Err(error) => json!({ "error": error }),
                })
                .collect();
            to_body(json!({ "responses": responses }))
        }
        "presence" => {
            let p: ChannelParams = params(body)?;
            to_body(hub.presence(&p.channel).await.map_err(ApiError::from_hub)?)
        }
        "presence_stats" => {
            let p: ChannelParams = params(body)?;
            to_body(
                hub.presence_stats(&p.channel)
                    .await
                    .map_err(ApiError::from_hub)?,
            )
        }
        "history" => {
            let p: HistoryParams = params(body)?;
            let page = hub.history(&p.channel, p.limit, p.since, p.reverse).await;
            to_body(page.map_err(ApiError::from_hub)?)
        }
        "channels" => {
            let _: NoParams = params(body)?;
            to_body(json!({ "channels": hub.channels() }))
        }
        "disconnect" => {
            let p: DisconnectParams = params(body)?;
            let code = match p.reconnect {
                true => DisconnectCode::ForceReconnect,
                false => DisconnectCode::ForceNoReconnect,
            };
            // Every node: here at once, the others through the broker.
            let push = DisconnectPush::new(code);
            let sent = hub.disconnect_user_everywhere(&p.user, push).await;
            let n = sent.map_err(|e| ApiError::from_hub(e.into()))?;
            to_body(json!({ "disconnected": n }))
        }
        "info" => {
            let _: NoParams = params(body)?;
            to_body(info(hub).await)
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::MethodNotFound,
            method,
        )),
    }
}
