//! The REST API over real HTTP, with a real todomanager over real gRPC, on every storage backend.

use std::{net::SocketAddr, time::Duration};

use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use testkit::{Relay, TestDb, todomanager::InProcess};
use tokio::{net::TcpListener, sync::oneshot};

/// Starts a server on an ephemeral port; it stops when the returned sender is dropped.
async fn spawn_server<F>(
    serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> F,
) -> (SocketAddr, oneshot::Sender<()>)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(serve(listener, stopped));
    (addr, stop)
}

async fn start_apiserver(todomanager: SocketAddr, timeout: Duration) -> (String, oneshot::Sender<()>) {
    let config = apiserver::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tracez_listen: "127.0.0.1:0".parse().unwrap(),
        todomanager_url: format!("http://{todomanager}"),
        todomanager_timeout: timeout,
        limits: Default::default(),
        faults: Default::default(),
    };
    let (addr, stop) = spawn_server(|listener, stopped| async move {
        apiserver::serve(listener, &config, async { drop(stopped.await) }).await
    })
    .await;
    (format!("http://{addr}"), stop)
}

/// apiserver and todomanager on `db`, stopped when dropped.
struct Stack {
    api: String,
    http: reqwest::Client,
    _stop_api: oneshot::Sender<()>,
    _todomanager: InProcess,
}

impl Stack {
    async fn start(db: &TestDb) -> Self {
        let todomanager = InProcess::start(&db.url).await;
        let (api, stop_api) = start_apiserver(todomanager.addr, Duration::from_secs(2)).await;
        Self { api, http: reqwest::Client::new(), _stop_api: stop_api, _todomanager: todomanager }
    }

    /// Sends a request with a JSON body (when given) and returns the status and the JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.api));
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(content_type.as_deref(), Some("application/json"), "{status} {text}");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_works_on_every_backend() {
    for db in testkit::all_backends().await {
        every_route_works(&db).await;
    }
}

async fn every_route_works(db: &TestDb) {
    let backend = db.backend;
    let stack = Stack::start(db).await;
    use Method as M;

    assert_eq!(stack.call(M::GET, "/v1/todo", None).await, (StatusCode::OK, json!([])), "{backend}");

    let response =
        stack.http.post(format!("{}/v1/todo", stack.api)).json(&json!({"text": "Check tracing"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{backend}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().expect("ids are strings").to_owned();
    assert_eq!(created, json!({"id": id, "text": "Check tracing", "done": false}), "{backend}");
    assert_eq!(location, format!("/v1/todo/{id}"), "{backend}");

    let (status, second) = stack.call(M::POST, "/v1/todo", Some(json!({"text": "Read the spans"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{backend}");
    let second_id = second["id"].as_str().unwrap().to_owned();

    assert_eq!(stack.call(M::GET, &location, None).await, (StatusCode::OK, created.clone()), "{backend}");
    assert_eq!(
        stack.call(M::GET, "/v1/todo", None).await,
        (StatusCode::OK, json!([created, second])),
        "{backend}: in id order"
    );

    let path = format!("/v1/todo/{id}");
    let done = json!({"id": id, "text": "Check tracing", "done": true});
    assert_eq!(stack.call(M::PUT, &path, Some(json!({"done": true}))).await, (StatusCode::OK, done), "{backend}");
    let renamed = json!({"id": id, "text": "Check traces", "done": true});
    assert_eq!(
        stack.call(M::PUT, &path, Some(json!({"text": "Check traces"}))).await,
        (StatusCode::OK, renamed),
        "{backend}"
    );
    let both = json!({"id": id, "text": "Done it", "done": false});
    let (status, body) = stack.call(M::PUT, &path, Some(json!({"text": "Done it", "done": false}))).await;
    assert_eq!((status, &body), (StatusCode::OK, &both), "{backend}");
    assert_eq!(stack.call(M::GET, &path, None).await, (StatusCode::OK, both.clone()), "{backend}");

    let second_path = format!("/v1/todo/{second_id}");
    assert_eq!(
        stack.call(M::DELETE, &second_path, None).await,
        (StatusCode::OK, json!({"success": true})),
        "{backend}"
    );
    let (status, body) = stack.call(M::GET, &second_path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: {body}");
    assert_eq!(stack.call(M::GET, "/v1/todo", None).await, (StatusCode::OK, json!([both])), "{backend}");
}

/// Bodies made up at random never get a 5xx and never change the service's health.
#[test]
fn random_bodies_never_get_a_server_error() {
    use proptest::prelude::*;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = testkit::sqlite();
    let stack = runtime.block_on(Stack::start(&db));
    let http = reqwest::blocking::Client::new();
    let json_text = prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        ("[a-zA-Z]{0,6}", any::<String>(), any::<bool>())
            .prop_map(|(key, text, done)| format!(r#"{{"{key}": {text:?}, "done": {done}}}"#)),
    ];
    let config = ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(body in json_text, method in prop_oneof![Just("POST"), Just("PUT")])| {
        let path = if method == "POST" { "/v1/todo" } else { "/v1/todo/1" };
        let response = http
            .request(method.parse().unwrap(), format!("{}{path}", stack.api))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        prop_assert!(response.status().as_u16() < 500, "{method} {body:?} → {}", response.status());
    });
    let ready = http.get(format!("{}/ready", stack.api)).send().unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    drop(stack);
}

/// Clients of the original Go service send `{"Text": …}`.
#[tokio::test(flavor = "multi_thread")]
async fn field_names_match_in_any_case() {
    let db = testkit::sqlite();
    let stack = Stack::start(&db).await;

    let (status, created) = stack.call(Method::POST, "/v1/todo", Some(json!({"Text": "Check tracing"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created, json!({"id": id, "text": "Check tracing", "done": false}));

    let path = format!("/v1/todo/{id}");
    let (status, updated) = stack.call(Method::PUT, &path, Some(json!({"TEXT": "Checked", "Done": true}))).await;
    assert_eq!((status, updated), (StatusCode::OK, json!({"id": id, "text": "Checked", "done": true})));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_errors_on_every_backend() {
    for db in testkit::all_backends().await {
        bad_requests_get_json_errors(&db).await;
    }
}

async fn bad_requests_get_json_errors(db: &TestDb) {
    let backend = db.backend;
    let stack = Stack::start(db).await;
    let (_, kept) = stack.call(Method::POST, "/v1/todo", Some(json!({"text": "keep me"}))).await;
    let id = kept["id"].as_str().unwrap();
    let todo = format!("/v1/todo/{id}");
    let json = Some("application/json");
    let long_text = json!({ "text": "x".repeat(1001) }).to_string();
    let huge_body = json!({ "text": "x".repeat(70 * 1024) }).to_string();

    // (method, path, content type, body, expected status)
    let cases: Vec<(&str, &str, Option<&str>, String, StatusCode)> = vec![
        ("POST", "/v1/todo", json, r#"{"text":"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, "".into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": 5}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": null}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": ["a"]}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, "{}".into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"["text"]"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#""text""#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": ""}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": "  \t "}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, long_text, StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": "a", "Text": "b"}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", Some("text/plain"), r#"{"text": "a"}"#.into(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("POST", "/v1/todo", None, r#"{"text": "a"}"#.into(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("POST", "/v1/todo", json, huge_body, StatusCode::PAYLOAD_TOO_LARGE),
        ("GET", "/v1/todo/abc", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/0", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/-1", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/1.5", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/99999999999999999999999", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/999999", None, "".into(), StatusCode::NOT_FOUND),
        ("GET", "/v1/todo/18446744073709551615", None, "".into(), StatusCode::NOT_FOUND),
        ("PUT", &todo, json, "{}".into(), StatusCode::BAD_REQUEST),
        ("PUT", &todo, json, r#"{"done": "yes"}"#.into(), StatusCode::BAD_REQUEST),
        ("PUT", &todo, json, r#"{"text": ""}"#.into(), StatusCode::BAD_REQUEST),
        (
            "PUT",
            &todo,
            Some("application/x-www-form-urlencoded"),
            "done=true".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("PUT", "/v1/todo/999999", json, r#"{"done": true}"#.into(), StatusCode::NOT_FOUND),
        ("PUT", "/v1/todo/zero", json, r#"{"done": true}"#.into(), StatusCode::BAD_REQUEST),
        ("DELETE", "/v1/todo/999999", None, "".into(), StatusCode::NOT_FOUND),
        ("DELETE", "/v1/todo/x", None, "".into(), StatusCode::BAD_REQUEST),
        ("PATCH", &todo, json, r#"{"done": true}"#.into(), StatusCode::METHOD_NOT_ALLOWED),
        // Deletes the finished todos only when told so (`?done=true`): without, a 400 that says how.
        ("DELETE", "/v1/todo", None, "".into(), StatusCode::BAD_REQUEST),
        ("DELETE", "/v1/todo?done=1", None, "".into(), StatusCode::BAD_REQUEST),
        ("POST", "/ping", None, "".into(), StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/v2/todo", None, "".into(), StatusCode::NOT_FOUND),
        // Unicode, encodings and numbers at their edges.
        ("POST", "/v1/todo", json, "\u{feff}{\"text\": \"bom\"}".into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": "\ud800"}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, json!({ "text": "😀".repeat(1001) }).to_string(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": 1e400}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": 18446744073709551616}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": {"nested": "object"}}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, "null".into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": "a"} trailing"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", json, r#"{"text": "a", "text": "b"}"#.into(), StatusCode::BAD_REQUEST),
        ("POST", "/v1/todo", Some("application/jsonx"), r#"{"text": "a"}"#.into(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "POST",
            "/v1/todo",
            Some("multipart/form-data; boundary=x"),
            "--x--".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("PUT", &todo, json, r#"{"done": null}"#.into(), StatusCode::BAD_REQUEST),
        ("PUT", &todo, json, r#"{"done": 1}"#.into(), StatusCode::BAD_REQUEST),
        ("PUT", &todo, json, r#"{"done": true, "DONE": false}"#.into(), StatusCode::BAD_REQUEST),
        // Ids that look like attacks, or like numbers from elsewhere.
        ("GET", "/v1/todo/18446744073709551616", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/1e5", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/0x10", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/%D9%A1", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/..%2F..%2Fetc%2Fpasswd", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/1%3BDROP%20TABLE%20todos", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/'%20OR%201=1%20--", None, "".into(), StatusCode::BAD_REQUEST),
        ("DELETE", "/v1/todo/%00", None, "".into(), StatusCode::BAD_REQUEST),
        ("GET", "/v1/todo/1/2", None, "".into(), StatusCode::NOT_FOUND),
        ("OPTIONS", "/v1/todo", None, "".into(), StatusCode::METHOD_NOT_ALLOWED),
        ("PUT", "/v1/todo", json, r#"{"done": true}"#.into(), StatusCode::METHOD_NOT_ALLOWED),
    ];
    assert!(cases.len() >= 55, "{} cases", cases.len());
    for (method, path, content_type, body, expected) in cases {
        let mut request =
            stack.http.request(method.parse().unwrap(), format!("{}{path}", stack.api)).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let (status, answer) = answer(request).await;
        let case = format!("{backend}: {method} {path} {content_type:?} {:.60}", body);
        assert_eq!(status, expected, "{case} → {answer}");
        let message = answer["error"].as_str().unwrap_or_else(|| panic!("{case}: no error message in {answer}"));
        assert!(!message.is_empty(), "{case}");
    }
    // Headers too large for the server: refused before any handler runs (by hyper, without JSON).
    let huge = "x".repeat(1024 * 1024);
    let response = stack.http.get(format!("{}/v1/todo", stack.api)).header("x-padding", huge).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{backend}");

    // No mistake changed the data, and the service is still healthy.
    assert_eq!(stack.call(Method::GET, "/v1/todo", None).await, (StatusCode::OK, json!([kept])), "{backend}");
    assert_eq!(stack.call(Method::GET, "/ready", None).await.0, StatusCode::OK, "{backend}");
}

#[tokio::test(flavor = "multi_thread")]
async fn liveness_and_readiness() {
    let db = testkit::sqlite();
    let todomanager = InProcess::start(&db.url).await;
    let (api, _stop_api) = start_apiserver(todomanager.addr, Duration::from_millis(500)).await;
    let http = reqwest::Client::new();

    assert_eq!(answer(http.get(format!("{api}/ping"))).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(answer(http.get(format!("{api}/ready"))).await, (StatusCode::OK, json!({"status": "ready"})));

    // Stopping takes a moment: wait for the event (readiness turning 503), with a deadline.
    drop(todomanager);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = answer(http.get(format!("{api}/ready"))).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still ready after todomanager stopped: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer(http.get(format!("{api}/ping"))).await.0, StatusCode::OK, "alive while todomanager is down");
}

/// todomanager behind a relay that the test cuts: 503 or 504 within the timeout, never a hang, and
/// service again when it returns, without restarting apiserver.
#[tokio::test(flavor = "multi_thread")]
async fn todomanager_unreachable_times_out_with_504() {
    let db = testkit::sqlite();
    let todomanager = InProcess::start(&db.url).await;
    let relay = Relay::start(todomanager.addr).await;
    let timeout = Duration::from_millis(700);
    let (api, _stop_api) = start_apiserver(relay.addr(), timeout).await;
    let http = reqwest::Client::new();
    let list = || http.get(format!("{api}/v1/todo"));
    let create = || http.post(format!("{api}/v1/todo")).json(&json!({"text": "a"}));

    assert_eq!(answer(create()).await.0, StatusCode::CREATED);

    // A cut connection answers nothing: to apiserver that is a call that timed out (504) or a
    // connection that could not be made in time (503), whichever comes first; readiness turns
    // 503. (A slow todomanager, never unreachable, gets 504: `tests/tracing.rs`.)
    relay.cut();
    let ready = || http.get(format!("{api}/ready"));
    let no_answer = [StatusCode::GATEWAY_TIMEOUT, StatusCode::SERVICE_UNAVAILABLE];
    for (request, expected) in [(list(), &no_answer[..]), (create(), &no_answer[..]), (ready(), &no_answer[1..])] {
        let started = std::time::Instant::now();
        let (status, body) = answer(request).await;
        assert!(expected.contains(&status), "{status}: {body}");
        assert!(body["error"].as_str().unwrap().contains("todomanager"), "{body}");
        // Generous: the timeout is 700 ms; a loaded machine must not make this fail.
        assert!(started.elapsed() < timeout + Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    relay.restore();
    let mut status = answer(list()).await.0;
    for _ in 0..10 {
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = answer(list()).await.0;
    }
    assert_eq!(status, StatusCode::OK, "apiserver recovers when todomanager returns");
    assert_eq!(answer(list()).await.1.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn todomanager_not_running_is_503() {
    // A port that nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (api, _stop) = start_apiserver(closed, Duration::from_secs(2)).await;
    let (status, body) = answer(reqwest::Client::new().get(format!("{api}/v1/todo"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

/// `PUT {"text":…}` and `PUT {"done":true}` on one todo at the same moment, 50 times: both
/// changes are kept every time. (apiserver used to read the todo, change one field and write
/// both back: one of the two changes was lost in 40 of 40 pairs.)
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_partial_updates_both_take_effect_on_every_backend() {
    for db in testkit::all_backends().await {
        let stack = Stack::start(&db).await;
        for round in 0..50 {
            let (status, created) = stack.call(Method::POST, "/v1/todo", Some(json!({"text": "before"}))).await;
            assert_eq!(status, StatusCode::CREATED);
            let path = format!("/v1/todo/{}", created["id"].as_str().unwrap());
            let text = format!("after {round}");
            let (renamed, done) = tokio::join!(
                stack.call(Method::PUT, &path, Some(json!({"text": text}))),
                stack.call(Method::PUT, &path, Some(json!({"done": true}))),
            );
            assert_eq!((renamed.0, done.0), (StatusCode::OK, StatusCode::OK), "{renamed:?} {done:?}");
            let (_, stored) = stack.call(Method::GET, &path, None).await;
            assert_eq!(
                (stored["text"].as_str(), stored["done"].as_bool()),
                (Some(text.as_str()), Some(true)),
                "{}: round {round} lost a change",
                db.backend
            );
        }
    }
}

/// 10,000 todos, read page by page: every todo exactly once, in id order, each page within the
/// size asked for, the `Link` header naming the next page until the last.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_list_comes_in_pages() {
    let db = testkit::sqlite();
    let stack = Stack::start(&db).await;
    // Written straight into the database (the schema is there once todomanager started):
    // 10,000 POSTs would make this test slow, not better.
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for n in 0..10_000 {
        sqlx::query("INSERT INTO todos (owner, text, done) VALUES ('anonymous', ?, false)")
            .bind(format!("todo {n}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let (status, first) = stack.call(Method::GET, "/v1/todo", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first.as_array().unwrap().len(), apiserver::routes::DEFAULT_PAGE_SIZE as usize);

    // Every todo once, following `Link`: the number of pages and the size of each.
    let walk = |page_size: u32| {
        let (http, api) = (stack.http.clone(), stack.api.clone());
        async move {
            let mut next = Some(format!("{api}/v1/todo?page_size={page_size}"));
            let (mut seen, mut sizes) = (Vec::new(), Vec::new());
            while let Some(url) = next.take() {
                let response = http.get(&url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                next = response.headers().get("link").map(|link| {
                    let link = link.to_str().unwrap();
                    assert!(link.ends_with(">; rel=\"next\""), "{link}");
                    format!("{api}{}", &link[1..link.find('>').unwrap()])
                });
                let page: Vec<Value> = response.json().await.unwrap();
                assert!(page.len() <= apiserver::routes::MAX_PAGE_SIZE as usize, "a page of {}", page.len());
                seen.extend(page.iter().map(|todo| todo["id"].as_str().unwrap().parse::<u64>().unwrap()));
                sizes.push(page.len());
            }
            (seen, sizes)
        }
    };
    let (seen, sizes) = walk(5000).await;
    assert_eq!(sizes, [1000; 10], "5000 is lowered to the maximum page size, 1000");
    assert_eq!(seen, (1..=10_000).collect::<Vec<u64>>());
    // A short last page: the page before it still names it.
    let (seen, sizes) = walk(300).await;
    assert_eq!(sizes.len(), 34, "33 full pages and one of 100");
    assert_eq!(sizes.last(), Some(&100));
    assert_eq!(seen, (1..=10_000).collect::<Vec<u64>>());

    for (query, why) in
        [("page_size=ten", "page_size"), ("page_token=abc", "page_token"), ("page_token=-1", "page_token")]
    {
        let (status, body) = stack.call(Method::GET, &format!("/v1/todo?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(why), "{query}: {body}");
    }
}

/// An id has one spelling: `+1` and `01` are not other names of todo 1.
#[tokio::test(flavor = "multi_thread")]
async fn ids_have_one_spelling() {
    let db = testkit::sqlite();
    let stack = Stack::start(&db).await;
    assert_eq!(stack.call(Method::POST, "/v1/todo", Some(json!({"text": "one"}))).await.0, StatusCode::CREATED);
    assert_eq!(stack.call(Method::GET, "/v1/todo/1", None).await.0, StatusCode::OK);
    for alias in ["%2B1", "01", "0001"] {
        let (status, body) = stack.call(Method::GET, &format!("/v1/todo/{alias}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{alias}: {body}");
    }
}

/// The body limit is 64 KiB exactly: a body of 65,536 bytes is read, one byte more is 413.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_up_to_64_kib_are_read() {
    let db = testkit::sqlite();
    let stack = Stack::start(&db).await;
    let body = |size: usize| {
        let mut body = br#"{"text":"padded"}"#.to_vec();
        body.resize(size, b' '); // JSON allows trailing whitespace
        body
    };
    for (size, expected) in [(64 * 1024, StatusCode::CREATED), (64 * 1024 + 1, StatusCode::PAYLOAD_TOO_LARGE)] {
        let request = stack.http.post(format!("{}/v1/todo", stack.api)).header(CONTENT_TYPE, "application/json");
        let (status, reply) = answer(request.body(body(size))).await;
        assert_eq!(status, expected, "{size} bytes: {reply}");
    }
}

/// `DELETE /v1/todo?done=true` deletes every finished todo, over more than one page of the
/// list, and nothing else; it answers how many. Without `done=true` it deletes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn clearing_the_finished_todos_deletes_those_and_only_those() {
    let db = testkit::sqlite();
    let stack = Stack::start(&db).await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    // 2,500 todos, every third one finished: ids 3, 6, 9…, across three pages of 1000.
    for n in 1..=2_500 {
        sqlx::query("INSERT INTO todos (owner, text, done) VALUES ('anonymous', ?, ?)")
            .bind(format!("todo {n}"))
            .bind(n % 3 == 0)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    for query in ["", "?done=false", "?done=yes", "?done"] {
        let (status, body) = stack.call(Method::DELETE, &format!("/v1/todo{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains("?done=true"), "{query:?}: {body}");
    }
    let (status, created) = stack.call(Method::POST, "/v1/todo", Some(json!({"text": "already", "done": true}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["done"], json!(true), "a todo can be created finished: {created}");

    let (status, body) = stack.call(Method::DELETE, "/v1/todo?done=true", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": 833 + 1})));
    let left: Vec<(i64, bool)> =
        sqlx::query_as("SELECT id, done FROM todos ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(left.len(), 2_500 - 833);
    assert!(left.iter().all(|(id, done)| !done && id % 3 != 0), "only the finished ones went");

    let (status, body) = stack.call(Method::DELETE, "/v1/todo?done=true", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": 0})), "again: nothing left to clear");
}
