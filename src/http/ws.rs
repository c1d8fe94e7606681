//! WebSocket framing of the room protocol: one reader loop feeding `Session`,
//! one writer task draining the session's queue.
//!
//! Invariants: a close always carries a code and a reason (trimmed to the 123
//! bytes a close frame allows); a session that has not joined within
//! `JOIN_TIMEOUT` is closed; the session's connections are released whatever
//! way the socket ends.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};

use super::AppState;
use crate::rooms::live::{OutRx, Outgoing, SESSION_QUEUE, session_queue};
use crate::signaling::session::{CLOSE_POLICY, Close, Session};

const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Frames larger than this are cut off by the WebSocket layer itself; the
/// protocol's own limit (64 KiB) is enforced with a proper close before that.
const MAX_FRAME: usize = 1 << 20;

pub async fn upgrade(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME).max_frame_size(MAX_FRAME).on_upgrade(move |socket| run(socket, s))
}

async fn run(socket: WebSocket, state: AppState) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = session_queue(SESSION_QUEUE);
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let mut session = Session::new(state.rooms.clone(), tx.clone());
    let join_deadline = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(join_deadline);
    loop {
        tokio::select! {
            msg = stream.next() => match read(&mut session, msg).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(close) => {
                    tx.close(close.code, &close.reason);
                    break;
                }
            },
            _ = &mut join_deadline, if !session.is_joined() => {
                tx.close(CLOSE_POLICY, "no join message received");
                break;
            }
            _ = &mut writer => {
                session.end().await;
                return;
            }
        }
    }
    session.end().await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Handle one frame; `Ok(false)` when the client went away.
async fn read(session: &mut Session, msg: Option<Result<Message, axum::Error>>) -> Result<bool, Close> {
    match msg {
        Some(Ok(Message::Text(text))) => session.handle_text(text.as_str()).await.map(|_| true),
        Some(Ok(Message::Binary(_))) => Err(Close { code: CLOSE_POLICY, reason: "binary frames are not part of the protocol".into() }),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(true),
        Some(Ok(Message::Close(_))) | None => Ok(false),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "websocket read failed");
            Ok(false)
        }
    }
}

async fn write_loop(mut sink: futures_util::stream::SplitSink<WebSocket, Message>, mut rx: OutRx) {
    while let Some(item) = rx.next().await {
        match item {
            Outgoing::Msg(m) => {
                // Serializing our own message types cannot fail.
                let text = serde_json::to_string(&m).expect("server messages serialize");
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Outgoing::Close(code, reason) => {
                let frame = CloseFrame { code, reason: trim_reason(&reason).into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
        }
    }
}

/// A close reason must fit in 123 bytes.
fn trim_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_reasons_are_trimmed_on_char_boundaries() {
        let long = "教".repeat(100);
        let t = super::trim_reason(&long);
        assert!(t.len() <= 123 && t.len() % 3 == 0);
        assert_eq!(super::trim_reason("ok"), "ok");
    }
}
