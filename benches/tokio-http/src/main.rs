//! The `http` example's server on tokio, for comparison: the same handler
//! (`answer` parses every complete request of a read and appends the
//! responses, `Date` included, exactly as the gopark server does), one task
//! per connection, one `write_all` per read, a ticker task for the `Date`
//! second. Usage: `tokio-http ADDR` (TOKIO_WORKER_THREADS sets the threads).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[allow(dead_code)] // the gopark server's `main`, `serve` and the like
#[path = "../../../examples/http.rs"]
mod http;

/// As the gopark server: a closing connection reads and discards what the
/// client still sends, for up to this long.
const LINGER: Duration = Duration::from_secs(1);

async fn handle(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; http::MAX_REQUEST];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = conn.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let http::Answered { consumed, close } =
            http::answer(&buf[..filled], filled == buf.len(), &mut out);
        if !out.is_empty() {
            conn.write_all(&out).await?;
            out.clear();
        }
        if close {
            conn.shutdown().await?;
            let mut sink = [0u8; 1024];
            let drain = async {
                let mut left: usize = 64 * 1024;
                while left > 0 {
                    match conn.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER, drain).await;
            return Ok(());
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).expect("usage: tokio-http ADDR");
    let listener = TcpListener::bind(&addr).await?;
    tokio::spawn(async {
        loop {
            tokio::time::sleep(http::date::tick()).await;
        }
    });
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                // gopark's accepted sockets have it, as Go's do.
                let _ = conn.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = handle(conn).await;
                });
            }
            Err(e) => {
                eprintln!("tokio-http: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
