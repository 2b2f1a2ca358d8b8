//! todomanager over real gRPC, on every storage backend available here.

use std::time::Duration;

use proto::{ListTodosReq, Todo, TodoIdReq, TodoManagerClient};
use testkit::{Relay, TestDb, todomanager::InProcess};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// A todomanager serving on an ephemeral port until dropped (testkit's), with its clients.
struct Server(InProcess);

impl Server {
    async fn start(database_url: &str) -> Self {
        Self(InProcess::start(database_url).await)
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.0.url()).unwrap().connect().await.unwrap()
    }

    async fn client(&self) -> TodoManagerClient<Channel> {
        TodoManagerClient::new(self.channel().await)
    }
}

fn todo(owner: &str, text: &str) -> Todo {
    Todo { id: 0, text: text.into(), done: false, owner: owner.into(), update_mask: None }
}

fn id_req(owner: &str, id: u64) -> TodoIdReq {
    TodoIdReq { id, owner: owner.into() }
}

async fn list(client: &mut TodoManagerClient<Channel>, owner: &str) -> Vec<Todo> {
    let stream =
        client.list_todos(ListTodosReq { owner: owner.into(), ..Default::default() }).await.unwrap().into_inner();
    stream.collect::<Result<Vec<_>, _>>().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_works_on_every_backend() {
    for db in testkit::all_backends().await {
        every_rpc_works(&db).await;
    }
}

async fn every_rpc_works(db: &TestDb) {
    let backend = db.backend;
    let server = Server::start(&db.url).await;
    let mut client = server.client().await;

    assert_eq!(list(&mut client, "alice").await, vec![], "{backend}: empty at first");

    let first = client.create_todo(todo("alice", "Check tracing")).await.unwrap().into_inner();
    let second = client.create_todo(todo("alice", "Read the spans")).await.unwrap().into_inner();
    let bobs = client.create_todo(todo("bob", "Bob's")).await.unwrap().into_inner();
    assert!(first.id >= 1 && second.id > first.id && bobs.id > second.id, "{backend}: ids come from the database");
    assert_eq!(
        first,
        Todo { id: first.id, text: "Check tracing".into(), done: false, owner: "alice".into(), update_mask: None }
    );

    let got = client.get_todo(id_req("alice", first.id)).await.unwrap().into_inner();
    assert_eq!(got, first, "{backend}");

    assert_eq!(list(&mut client, "alice").await, vec![first.clone(), second.clone()], "{backend}: id order, own todos");
    assert_eq!(list(&mut client, "bob").await, vec![bobs.clone()], "{backend}");

    let changed = Todo { done: true, text: "Check tracing again".into(), ..first.clone() };
    let updated = client.update_todo(changed.clone()).await.unwrap().into_inner();
    assert_eq!(updated, changed, "{backend}");
    // The same values again: still found (MySQL reports 0 changed rows here).
    let unchanged = client.update_todo(changed.clone()).await.unwrap().into_inner();
    assert_eq!(unchanged, changed, "{backend}");
    assert_eq!(client.get_todo(id_req("alice", first.id)).await.unwrap().into_inner(), changed, "{backend}");

    // An update_mask sets only the fields it names; the others keep their stored values,
    // whatever the request carries in them (an empty text is not an error then).
    let mask =
        |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|path| path.to_string()).collect() });
    let only_done = Todo { done: false, text: String::new(), update_mask: mask(&["done"]), ..changed.clone() };
    let updated = client.update_todo(only_done).await.unwrap().into_inner();
    assert_eq!((updated.text.as_str(), updated.done), ("Check tracing again", false), "{backend}: done only");
    let only_text = Todo { done: true, text: "Masked".into(), update_mask: mask(&["text"]), ..changed.clone() };
    let updated = client.update_todo(only_text).await.unwrap().into_inner();
    assert_eq!((updated.text.as_str(), updated.done), ("Masked", false), "{backend}: text only");
    let stored = client.get_todo(id_req("alice", first.id)).await.unwrap().into_inner();
    assert_eq!((stored.text.as_str(), stored.done), ("Masked", false), "{backend}: as stored");
    let unknown = client.update_todo(Todo { update_mask: mask(&["owner"]), ..changed.clone() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{backend}: {unknown:?}");
    let changed = client.update_todo(changed.clone()).await.unwrap().into_inner();

    let deleted = client.delete_todo(id_req("alice", second.id)).await.unwrap().into_inner();
    assert!(deleted.success, "{backend}");
    assert_eq!(list(&mut client, "alice").await, vec![changed], "{backend}");

    // A new todo never gets a deleted todo's id.
    let third = client.create_todo(todo("alice", "Third")).await.unwrap().into_inner();
    assert!(third.id > bobs.id, "{backend}: ids are not reused");

    // Multi-byte text: the limit counts characters, not bytes.
    let long = "é".repeat(1000);
    let created = client.create_todo(todo("alice", &long)).await.unwrap().into_inner();
    assert_eq!(client.get_todo(id_req("alice", created.id)).await.unwrap().into_inner().text, long, "{backend}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_get_the_right_status_on_every_backend() {
    for db in testkit::all_backends().await {
        mistakes_get_the_right_status(&db).await;
    }
}

async fn mistakes_get_the_right_status(db: &TestDb) {
    let backend = db.backend;
    let server = Server::start(&db.url).await;
    let mut client = server.client().await;
    let alices = client.create_todo(todo("alice", "mine")).await.unwrap().into_inner();

    let cases: Vec<(&str, Result<(), tonic::Status>, Code)> = vec![
        ("empty text", client.create_todo(todo("alice", "")).await.map(drop), Code::InvalidArgument),
        ("blank text", client.create_todo(todo("alice", " \t\n")).await.map(drop), Code::InvalidArgument),
        ("1001 chars", client.create_todo(todo("alice", &"x".repeat(1001))).await.map(drop), Code::InvalidArgument),
        ("no owner", client.create_todo(todo("", "text")).await.map(drop), Code::InvalidArgument),
        ("long owner", client.create_todo(todo(&"o".repeat(256), "text")).await.map(drop), Code::InvalidArgument),
        ("get unknown", client.get_todo(id_req("alice", 999_999)).await.map(drop), Code::NotFound),
        ("get huge id", client.get_todo(id_req("alice", u64::MAX)).await.map(drop), Code::NotFound),
        ("get id 0", client.get_todo(id_req("alice", 0)).await.map(drop), Code::InvalidArgument),
        ("get other's", client.get_todo(id_req("bob", alices.id)).await.map(drop), Code::NotFound),
        (
            "list no owner",
            client.list_todos(ListTodosReq { owner: "".into(), ..Default::default() }).await.map(drop),
            Code::InvalidArgument,
        ),
        (
            "update unknown",
            client.update_todo(Todo { id: 999_999, ..todo("alice", "x") }).await.map(drop),
            Code::NotFound,
        ),
        (
            "update other's",
            client.update_todo(Todo { id: alices.id, ..todo("bob", "x") }).await.map(drop),
            Code::NotFound,
        ),
        (
            "update empty text",
            client.update_todo(Todo { id: alices.id, ..todo("alice", "") }).await.map(drop),
            Code::InvalidArgument,
        ),
        ("delete unknown", client.delete_todo(id_req("alice", 999_999)).await.map(drop), Code::NotFound),
        ("delete other's", client.delete_todo(id_req("bob", alices.id)).await.map(drop), Code::NotFound),
    ];
    for (case, result, code) in cases {
        let status = result.expect_err(case);
        assert_eq!(status.code(), code, "{backend}, {case}: {status:?}");
        assert!(!status.message().is_empty(), "{backend}, {case}: the status says why");
    }
    // None of the mistakes changed anything.
    assert_eq!(list(&mut client, "alice").await, vec![alices], "{backend}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_are_served() {
    let db = testkit::sqlite();
    let server = Server::start(&db.url).await;

    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "todo_mgr.TodoManager"] {
        let answer = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "health of {service:?}");
    }

    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) = answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("reflection did not list the services");
    };
    let names: Vec<_> = listed.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"todo_mgr.TodoManager".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
}

/// MariaDB behind a relay that the test cuts: UNAVAILABLE while it is cut, service again once
/// it is restored, without restarting todomanager.
/// A relay in front of the MySQL/MariaDB server of `db` (to cut the connection on cue), and
/// `db`'s URL through it.
async fn relayed(db: &TestDb) -> (Relay, String) {
    let (server_part, database) = db.url.rsplit_once('/').unwrap();
    let host_port = server_part.rsplit_once('@').map_or(server_part, |(_, host)| host).trim_start_matches("mysql://");
    let target = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
    let relay = Relay::start(target).await;
    let relayed_url = db.url.replace(host_port, &relay.addr().to_string());
    assert!(relayed_url.ends_with(database));
    (relay, relayed_url)
}

#[tokio::test(flavor = "multi_thread")]
async fn database_unreachable_is_unavailable_and_recovers() {
    let Some(db) = testkit::mysql().await else { return };
    let (relay, relayed_url) = relayed(&db).await;
    let server = Server::start(&relayed_url).await;
    let mut client = server.client().await;
    let saved = client.create_todo(todo("alice", "before the cut")).await.unwrap().into_inner();

    relay.cut();
    let started = std::time::Instant::now();
    let status = client.get_todo(id_req("alice", saved.id)).await.expect_err("the database is cut off");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Generous: the database timeout is 3 s (testkit::DATABASE_TIMEOUT); a hang would be far longer.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    relay.restore();
    let mut answer = client.get_todo(id_req("alice", saved.id)).await;
    // The pool may hand out one connection that died during the cut before it reconnects.
    for _ in 0..5 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        answer = client.get_todo(id_req("alice", saved.id)).await;
    }
    assert_eq!(answer.expect("todomanager recovers when the database returns").into_inner(), saved);
}

/// Liveness is the process answering, readiness the database reachable: while MariaDB is cut
/// off, the server's own health (`""`, the chart's liveness probe) stays SERVING and only the
/// todo service (the readiness probe) turns NOT_SERVING, so the kubelet never restarts a
/// healthy todomanager during a database outage.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_not_ready_but_alive() {
    let Some(db) = testkit::mysql().await else { return };
    let (relay, relayed_url) = relayed(&db).await;
    let server = Server::start(&relayed_url).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut status = async |service: &str| {
        let request = HealthCheckRequest { service: service.into() };
        health.check(request).await.unwrap().into_inner().status()
    };
    assert_eq!(status("").await, ServingStatus::Serving);
    assert_eq!(status(todomanager::server::READINESS_SERVICE).await, ServingStatus::Serving);

    relay.cut();
    // The health service re-checks the database every 5 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while status(todomanager::server::READINESS_SERVICE).await == ServingStatus::Serving {
        assert!(std::time::Instant::now() < deadline, "readiness never noticed the outage");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status(todomanager::server::READINESS_SERVICE).await, ServingStatus::NotServing);
    assert_eq!(status("").await, ServingStatus::Serving, "liveness must not follow the database");
}

/// Messages that are not what the contract says: undecodable protobuf is INVALID_ARGUMENT (the
/// client's mistake, not a server error; tonic and grpc-go would say INTERNAL), an unknown
/// method UNIMPLEMENTED; none of them harms the service.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_grpc_requests_get_the_right_status() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct WrongTypes {
        /// `id` is a uint64 in the contract: here it is a string.
        #[prost(string, tag = "1")]
        id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct BadText {
        /// `text` must be UTF-8: here it is arbitrary bytes.
        #[prost(bytes = "vec", tag = "2")]
        text: Vec<u8>,
        #[prost(string, tag = "4")]
        owner: String,
    }

    let db = testkit::sqlite();
    let server = Server::start(&db.url).await;
    let call = |path: &'static str| {
        let channel = server.channel();
        async move {
            let mut grpc = tonic::client::Grpc::new(channel.await);
            grpc.ready().await.unwrap();
            (grpc, tonic::codegen::http::uri::PathAndQuery::from_static(path))
        }
    };
    let (mut grpc, path) = call("/todo_mgr.TodoManager/CreateTodo").await;
    let status = grpc
        .unary::<_, Todo, _>(
            tonic::Request::new(WrongTypes { id: "one".into() }),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cannot be decoded"), "{status:?}");

    let (mut grpc, path) = call("/todo_mgr.TodoManager/CreateTodo").await;
    let bad = BadText { text: vec![0xff, 0xfe, 0x00], owner: "alice".into() };
    let status =
        grpc.unary::<_, Todo, _>(tonic::Request::new(bad), path, tonic_prost::ProstCodec::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let (mut grpc, path) = call("/todo_mgr.TodoManager/EraseEverything").await;
    let status = grpc
        .unary::<_, Todo, _>(tonic::Request::new(todo("alice", "x")), path, tonic_prost::ProstCodec::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    let mut client = server.client().await;
    assert_eq!(list(&mut client, "alice").await, vec![], "nothing was stored");
    assert!(client.create_todo(todo("alice", "still fine")).await.is_ok());
}

/// A request that says it is not gRPC (`Content-Type: application/json`) is refused with HTTP
/// 415, as gRPC's wire protocol asks, and not run (it was stored before).
#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_is_not_grpc_gets_415() {
    use prost::Message as _;
    use tower::ServiceExt as _;

    let db = testkit::sqlite();
    let server = Server::start(&db.url).await;
    let message = todo("alice", "not through gRPC").encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    for (content_type, expected) in [("application/json", 415), ("application/grpc", 200)] {
        let request =
            tonic::codegen::http::Request::post(format!("{}/todo_mgr.TodoManager/CreateTodo", server.0.url()))
                .header("content-type", content_type)
                .header("te", "trailers")
                .body(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(frame.clone()))))
                .unwrap();
        let response = server.channel().await.oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{content_type}");
    }
    let mut client = server.client().await;
    assert_eq!(list(&mut client, "alice").await.len(), 1, "only the gRPC request was run");
}

/// Every change is in the history, with nothing lost when the service stops right after the
/// last one (before the writer's window is over): on every backend.
#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_in_the_history_even_when_stopped_at_once() {
    for db in testkit::all_backends().await {
        let backend = db.backend;
        let server = Server::start(&db.url).await;
        let mut client = server.client().await;
        let created = client.create_todo(todo("hal", "Remember")).await.unwrap().into_inner();
        client.update_todo(Todo { id: created.id, ..todo("hal", "Remember this") }).await.unwrap();
        client.delete_todo(id_req("hal", created.id)).await.unwrap();
        // Another owner's change is not in hal's history.
        client.create_todo(todo("ann", "Mine")).await.unwrap();
        server.0.stop().await;

        let store = todomanager::Store::open(&db.url, Duration::from_secs(5)).await.unwrap();
        let history = store.history("hal", created.id as i64).await.unwrap();
        let actions: Vec<&str> = history.iter().map(|row| row.action.as_str()).collect();
        assert_eq!(actions, ["created", "updated", "deleted"], "{backend}");
        assert!(history.windows(2).all(|pair| pair[0].at_unix_ms <= pair[1].at_unix_ms), "{backend}: {history:?}");
        // No tracing here: no trace id to keep.
        assert!(history.iter().all(|row| row.trace_id.is_empty()), "{backend}: {history:?}");
    }
}
