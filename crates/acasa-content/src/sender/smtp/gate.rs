//! The point of no return of an SMTP transaction, held until the caller has
//! recorded the message as sent.
//!
//! A server takes responsibility for a message when it reads the end of its
//! data (`CRLF . CRLF`); a client that disconnects before that leaves no
//! message behind (RFC 5321 §4.1.1.4, and every server discards an
//! unterminated DATA). [`Gated`] is the stream under lettre's connection: when
//! armed, it holds back the write of the end-of-data marker, tells the sender
//! it is there, and writes it only once released — after the caller's record
//! has committed — or fails it when the caller aborts, which breaks the
//! connection so the server drops the message.
//!
//! So a crash before the record commits leaves the outbox row pending and
//! the server without the message (it is sent once, later); a crash after it
//! leaves the row sent, and the end-of-data marker is a single write issued
//! at once by the same task. lettre writes the marker as one `write_all` of
//! exactly `\r\n.\r\n` after the body (`message_iter`); the body never is
//! that (its codec dot-stuffs lines starting with a dot). Only a plaintext
//! stream can be gated: with STARTTLS the bytes below the TLS layer are
//! ciphertext and the sender records after the server's reply instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// The end-of-data marker as lettre writes it.
const END_OF_DATA: &[u8] = b"\r\n.\r\n";

#[derive(Debug, Default)]
enum State {
    /// Writes pass.
    #[default]
    Open,
    /// The next end-of-data write is held; the sender is told.
    Armed(Option<oneshot::Sender<()>>),
    /// The end-of-data write is held until released or aborted.
    Holding(Option<Waker>),
    /// The held write goes out.
    Released,
    /// The held write fails: the transaction is abandoned.
    Aborted,
}

/// The shared switch of a [`Gated`] stream.
#[derive(Debug, Default)]
pub(super) struct Gate(Mutex<State>);

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the next end-of-data write; the receiver fires when it is held.
    pub(super) fn arm(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        *self.state() = State::Armed(Some(tx));
        rx
    }

    /// Lets the held write (or the next one) go out, and passes writes again.
    pub(super) fn release(&self) {
        let mut state = self.state();
        let waker = match std::mem::replace(&mut *state, State::Released) {
            State::Holding(waker) => waker,
            State::Armed(_) => {
                *state = State::Open;
                None
            }
            _ => None,
        };
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Fails the held write: the connection breaks, the server drops the message.
    pub(super) fn abort(&self) {
        let mut state = self.state();
        let waker = match std::mem::replace(&mut *state, State::Aborted) {
            State::Holding(waker) => waker,
            _ => None,
        };
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Passes writes again (the transaction ended before its end of data).
    pub(super) fn disarm(&self) {
        *self.state() = State::Open;
    }
}

/// A stream whose end-of-data write a [`Gate`] can hold.
#[derive(Debug)]
pub(super) struct Gated<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Gated<S> {
    /// `inner` behind `gate`.
    pub(super) fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        {
            let mut state = self.gate.state();
            match &mut *state {
                State::Armed(tell) if buf == END_OF_DATA => {
                    if let Some(tell) = tell.take() {
                        let _ = tell.send(());
                    }
                    *state = State::Holding(Some(cx.waker().clone()));
                    return Poll::Pending;
                }
                State::Holding(waker) => {
                    *waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                State::Aborted => {
                    *state = State::Open;
                    return Poll::Ready(Err(io::Error::other("the message was abandoned before its end of data")));
                }
                State::Released => *state = State::Open,
                State::Open | State::Armed(_) => {}
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for Gated<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn the_end_of_data_waits_for_release_and_fails_on_abort() {
        let (client, mut server) = tokio::io::duplex(1024);
        let gate = Arc::new(Gate::default());
        let mut gated = Gated::new(client, gate.clone());
        gated.write_all(b"DATA\r\n").await.unwrap();
        let reached = gate.arm();
        gated.write_all(b"body").await.unwrap();
        let writer = tokio::spawn(async move {
            gated.write_all(END_OF_DATA).await.unwrap();
            gated.write_all(b"QUIT\r\n").await.unwrap();
            gated
        });
        reached.await.unwrap();
        let mut seen = vec![0u8; 10];
        server.read_exact(&mut seen).await.unwrap();
        assert_eq!(&seen, b"DATA\r\nbody", "nothing after the body before release");
        gate.release();
        let mut gated = writer.await.unwrap();
        let mut rest = vec![0u8; 11];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"\r\n.\r\nQUIT\r\n");

        // Aborted: the held write fails, nothing reaches the server.
        let reached = gate.arm();
        let writer = tokio::spawn(async move { gated.write_all(END_OF_DATA).await });
        reached.await.unwrap();
        gate.abort();
        assert!(writer.await.unwrap().is_err());

        // Disarmed: writes pass.
        let (client, mut server) = tokio::io::duplex(64);
        let mut gated = Gated::new(client, gate.clone());
        drop(gate.arm());
        gate.disarm();
        gated.write_all(END_OF_DATA).await.unwrap();
        let mut seen = vec![0u8; 5];
        server.read_exact(&mut seen).await.unwrap();
        assert_eq!(&seen, END_OF_DATA);
    }
}
