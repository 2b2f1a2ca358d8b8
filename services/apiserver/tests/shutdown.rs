//! The apiserver binary, stopped with SIGTERM while a request is in flight: the request still
//! completes, new connections are refused, and the process exits 0.

use std::{
    net::{SocketAddr, TcpStream},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use proto::{DeleteTodoRes, ListTodosReq, Todo, TodoIdReq, TodoManager, TodoManagerServer};
use serde_json::{Value, json};
use testkit::process::Service;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// A todomanager whose CreateTodo waits until the test lets it answer.
struct HeldTodoManager {
    entered: Arc<Semaphore>,
    release: Arc<Semaphore>,
}

#[tonic::async_trait]
impl TodoManager for HeldTodoManager {
    async fn create_todo(&self, request: Request<Todo>) -> Result<Response<Todo>, Status> {
        self.entered.add_permits(1);
        self.release.acquire().await.unwrap().forget();
        Ok(Response::new(Todo { id: 42, ..request.into_inner() }))
    }

    type ListTodosStream = tokio_stream::Empty<Result<Todo, Status>>;

    async fn list_todos(&self, _: Request<ListTodosReq>) -> Result<Response<Self::ListTodosStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn get_todo(&self, _: Request<TodoIdReq>) -> Result<Response<Todo>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn update_todo(&self, _: Request<Todo>) -> Result<Response<Todo>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn delete_todo(&self, _: Request<TodoIdReq>) -> Result<Response<DeleteTodoRes>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_complete() {
    let entered = Arc::new(Semaphore::new(0));
    let release = Arc::new(Semaphore::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let todomanager = listener.local_addr().unwrap();
    let service = HeldTodoManager { entered: entered.clone(), release: release.clone() };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TodoManagerServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let mut command = Command::new(env!("CARGO_BIN_EXE_apiserver"));
    command.args(["--listen", "127.0.0.1:0", "--tracez-listen", "127.0.0.1:0"]);
    command.args(["--todomanager-url", &format!("http://{todomanager}")]).env("OTEL_SDK_DISABLED", "true");
    let apiserver = Service::start(command, "address");
    let address: SocketAddr = apiserver.field("address").unwrap().parse().unwrap();

    let in_flight = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(format!("http://{address}/v1/todo"))
            .json(&json!({"text": "finish me"}))
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    });
    entered.acquire().await.unwrap().forget();

    apiserver.send_sigterm();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(address).is_ok() {
        assert!(Instant::now() < deadline, "apiserver still accepts connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!in_flight.is_finished(), "the request must still be in flight");

    release.add_permits(1);
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED);
    assert_eq!(body, json!({"id": "42", "text": "finish me", "done": false}));

    let exit = tokio::task::spawn_blocking(move || apiserver.wait()).await.unwrap();
    assert!(exit.success(), "apiserver exited with {exit}");
}
