//! Test helpers for hand-written TCP peers (fake HTTP servers in unit tests): reading what has
//! arrived and writing everything, on a `TcpStream` without tokio's io-util feature.

use tokio::net::TcpStream;

/// Reads what has arrived (0 at the end of the stream).
pub(crate) async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> usize {
    loop {
        stream.readable().await.unwrap();
        match stream.try_read(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return 0,
        }
    }
}

/// Writes all of `bytes` (stops quietly when the peer has gone).
pub(crate) async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        stream.writable().await.unwrap();
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}
