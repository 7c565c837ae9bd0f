//! An in-process Modbus TCP server for tests, on 127.0.0.1: serves the four tables from memory
//! (`TABLE_LEN` entries each; further addresses answer exception 2), decodes requests on its own
//! (not with `frame`), can stop answering (it still reads) or close every connection, and
//! counts connections and requests.

use super::Table;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Entries in each table.
pub(crate) const TABLE_LEN: usize = 256;

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    tables: Mutex<[[u16; TABLE_LEN]; 4]>,
    silent: AtomicBool,
    accepted: AtomicUsize,
    open: AtomicUsize,
    requests: AtomicUsize,
    close: watch::Sender<u64>,
}

fn index(table: Table) -> usize {
    match table {
        Table::Coils => 0,
        Table::DiscreteInputs => 1,
        Table::InputRegisters => 2,
        Table::HoldingRegisters => 3,
    }
}

impl TestServer {
    /// A server on a free loopback port.
    pub(crate) async fn start() -> TestServer {
        TestServer::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A server on `addr` (to bring one back on the port of a stopped one).
    pub(crate) async fn start_on(addr: SocketAddr) -> TestServer {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            tables: Mutex::new([[0; TABLE_LEN]; 4]),
            silent: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            close: watch::channel(0).0,
        });
        let for_accept = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                for_accept.accepted.fetch_add(1, SeqCst);
                for_accept.open.fetch_add(1, SeqCst);
                tokio::spawn(serve(stream, for_accept.clone()));
            }
        });
        TestServer {
            addr,
            shared,
            accept,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops answering (true): requests are still read and counted, never answered.
    pub(crate) fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, SeqCst);
    }

    /// Closes every open connection.
    pub(crate) fn close_connections(&self) {
        self.shared.close.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// Connections open now (as far as the server has noticed).
    pub(crate) fn open(&self) -> usize {
        self.shared.open.load(SeqCst)
    }

    /// Requests received so far, answered or not.
    pub(crate) fn requests(&self) -> usize {
        self.shared.requests.load(SeqCst)
    }

    pub(crate) fn set(&self, table: Table, address: u16, value: u16) {
        self.shared.tables.lock().unwrap()[index(table)][usize::from(address)] = value;
    }

    pub(crate) fn get(&self, table: Table, address: u16) -> u16 {
        self.shared.tables.lock().unwrap()[index(table)][usize::from(address)]
    }
}

impl Drop for TestServer {
    /// Stops accepting (further connects are refused) and closes every connection.
    fn drop(&mut self) {
        self.accept.abort();
        self.close_connections();
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut close = shared.close.subscribe();
    loop {
        let request = tokio::select! {
            r = read_request(&stream) => r,
            _ = close.changed() => None,
        };
        let Some((head, pdu)) = request else { break };
        shared.requests.fetch_add(1, SeqCst);
        if shared.silent.load(SeqCst) {
            continue;
        }
        let reply = answer(&shared, &pdu);
        let mut out = head[..4].to_vec();
        out.extend((reply.len() as u16 + 1).to_be_bytes());
        out.push(head[6]);
        out.extend(reply);
        crate::test_net::write_all(&stream, &out).await;
    }
    shared.open.fetch_sub(1, SeqCst);
}

async fn read_request(stream: &TcpStream) -> Option<([u8; 7], Vec<u8>)> {
    let mut head = [0u8; 7];
    read_exact(stream, &mut head).await?;
    let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
    if !(2..=254).contains(&len) {
        return None;
    }
    let mut pdu = vec![0u8; len - 1];
    read_exact(stream, &mut pdu).await?;
    Some((head, pdu))
}

async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        let n = crate::test_net::read_some(stream, &mut buf[at..]).await;
        if n == 0 {
            return None;
        }
        at += n;
    }
    Some(())
}

fn word(pdu: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([pdu[at], pdu[at + 1]]))
}

/// The answer PDU to a request PDU.
fn answer(shared: &Shared, pdu: &[u8]) -> Vec<u8> {
    let function = pdu[0];
    let exception = |code: u8| vec![function | 0x80, code];
    if pdu.len() < 5 {
        return exception(3);
    }
    let (address, count) = (word(pdu, 1), word(pdu, 3));
    let mut tables = shared.tables.lock().unwrap();
    let span = |n: usize| address + n <= TABLE_LEN;
    match function {
        1 | 2 => {
            if !(1..=2000).contains(&count) {
                return exception(3);
            }
            if !span(count) {
                return exception(2);
            }
            let table = &tables[usize::from(function) - 1];
            let mut bytes = vec![0u8; count.div_ceil(8)];
            for i in 0..count {
                if table[address + i] != 0 {
                    bytes[i / 8] |= 1 << (i % 8);
                }
            }
            let mut out = vec![function, bytes.len() as u8];
            out.extend(bytes);
            out
        }
        3 | 4 => {
            if !(1..=125).contains(&count) {
                return exception(3);
            }
            if !span(count) {
                return exception(2);
            }
            let table = &tables[if function == 3 { 3 } else { 2 }];
            let mut out = vec![function, (2 * count) as u8];
            for v in &table[address..address + count] {
                out.extend(v.to_be_bytes());
            }
            out
        }
        5 | 6 => {
            if !span(1) {
                return exception(2);
            }
            let value = match (function, count) {
                (5, 0xFF00) => 1,
                (5, 0) => 0,
                (5, _) => return exception(3),
                _ => count as u16,
            };
            tables[if function == 5 { 0 } else { 3 }][address] = value;
            pdu.to_vec()
        }
        15 | 16 => {
            if !span(count) {
                return exception(2);
            }
            let data = &pdu[6..];
            for i in 0..count {
                if function == 15 {
                    tables[0][address + i] = u16::from((data[i / 8] >> (i % 8)) & 1);
                } else {
                    tables[3][address + i] = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
                }
            }
            pdu[..5].to_vec()
        }
        _ => exception(1),
    }
}
