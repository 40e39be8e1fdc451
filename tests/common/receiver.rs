//! [`Receiver`]: an HTTP receiver for notifications on loopback (webhooks,
//! Slack's incoming webhooks), keeping every body it got and answering as
//! the test sets it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// How the receiver answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Unavailable,
    Gone,
    /// Never answers (the connection stays open).
    Hang,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer::Ok));
        let (sink, mode) = (got.clone(), answer.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (sink, mode) = (sink.clone(), mode.clone());
            async move {
                let answer = *mode.lock().unwrap();
                sink.lock().unwrap().push((headers, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                match answer {
                    Answer::Ok => StatusCode::OK,
                    Answer::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                    Answer::Gone => StatusCode::GONE,
                    Answer::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        StatusCode::OK
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, got, answer }
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn got(&self) -> Vec<(HeaderMap, Value)> {
        self.got.lock().unwrap().clone()
    }

    /// What arrived, as (event, id) pairs.
    pub fn events(&self) -> Vec<(String, String)> {
        self.got()
            .iter()
            .map(|(_, b)| (b["event"].as_str().unwrap_or("").to_string(), b["id"].as_str().unwrap_or("").to_string()))
            .collect()
    }
}
