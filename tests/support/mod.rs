//! Shared by the HTTP integration tests: the real server started on 127.0.0.1:0 with a
//! temporary data dir, and a minimal HTTP/1.1 client over `std::net`.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use vwed::config::{self, Config};
use vwed::server::{self, Running};

/// The default configuration with a loopback port chosen by the kernel and data in `dir`.
pub fn config(dir: &Path) -> Config {
    let data = dir.to_string_lossy().to_string();
    let env = move |k: &str| match k {
        "VWED_LISTEN" => Some("127.0.0.1:0".to_string()),
        "VWED_DATA_DIR" => Some(data.clone()),
        _ => None,
    };
    config::load(None, &env).expect("default config")
}

/// A running server and the runtime it runs on.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub running: Option<Running>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(config: &Config) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(server::start(config)).expect("server starts");
        let addr = running.addr;
        Server {
            rt,
            running: Some(running),
            addr,
        }
    }

    pub fn stop(mut self) {
        let running = self.running.take().unwrap();
        self.rt.block_on(running.shutdown());
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        call_at(self.addr, method, path, body, headers)
    }

    /// The whole raw response (status line, headers and body).
    pub fn raw_with_headers(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        (raw[9..12].parse().unwrap(), raw)
    }

    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        json_at(self.addr, method, path, body)
    }

    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, task) = self.json("GET", &format!("/api/tasks/{id}"), None);
            assert_eq!(code, 200, "{task}");
            if task["status"] == want {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never became {want}: {task}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A definition `id` (label `id`) with input `ms` (Long, default 0) and `children` under the
/// root.
pub fn definition(id: &str, children: Value) -> Value {
    json!({"id": id, "label": id, "detail": {"inputParams": [
            {"name": "ms", "type": "Long", "defaultValue": "0"}],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
            "children": {"default": children}}}})
}

/// `{"type": "Simple", "value": v}` for each (name, value) pair.
pub fn simple_params(pairs: &[(&str, &str)]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k.to_string(), json!({"type": "Simple", "value": v}));
    }
    Value::Object(map)
}

/// Definition `id`: `GetIdleSiteBp` b1 with `get_idle` (Simple values), then a block b2 of
/// type `middle` on the site b1 found (`DelayBp`: waits `taskInputs.ms` instead), then
/// `SetSiteUnlockedBp` b3 on that site.
pub fn take_site_def(id: &str, get_idle: &[(&str, &str)], middle: &str) -> Value {
    let site = json!({"type": "Expression", "value": "blocks.b1.siteId"});
    let middle_params = if middle == "DelayBp" {
        json!({"timeMillis": {"type": "Expression", "value": "taskInputs.ms"}})
    } else {
        json!({"siteId": site})
    };
    definition(
        id,
        json!([
            {"id": 1, "name": "b1", "blockType": "GetIdleSiteBp", "children": {},
             "inputParams": simple_params(get_idle)},
            {"id": 2, "name": "b2", "blockType": middle, "children": {},
             "inputParams": middle_params},
            {"id": 3, "name": "b3", "blockType": "SetSiteUnlockedBp", "children": {},
             "inputParams": {"siteId": site}}]),
    )
}

/// Prints "start", waits `taskInputs.ms`, prints "end".
pub fn delay_def(id: &str) -> Value {
    definition(
        id,
        json!([
            {"id": 1, "name": "b1", "blockType": "PrintBp", "children": {},
             "inputParams": {"message": {"type": "Simple", "value": "start"}}},
            {"id": 2, "name": "b2", "blockType": "DelayBp", "children": {},
             "inputParams": {"timeMillis": {"type": "Expression", "value": "taskInputs.ms"}}},
            {"id": 3, "name": "b3", "blockType": "PrintBp", "children": {},
             "inputParams": {"message": {"type": "Simple", "value": "end"}}}]),
    )
}

/// One HTTP/1.1 request to `addr` (a server in this process or a child): status and body.
pub fn call_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let text = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, text)
}

/// [`call_at`] with JSON in and out.
pub fn json_at(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, out) = call_at(addr, method, path, text.as_deref(), &[]);
    (
        status,
        serde_json::from_str(&out).unwrap_or(Value::String(out)),
    )
}

/// Waits (real time, at most 30 s) until `f` holds; the failure names `what`.
pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the vwed binary with `args` and waits for the stderr line containing `marker`
/// followed by the address it listens on (`… listening on http://ADDR`); the child and the
/// address. Its stderr keeps being drained so it never blocks on a full pipe.
pub fn spawn_listening(args: &[&str], marker: &str) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vwed"))
        .args(args)
        .env("VWED_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("exited before listening").unwrap();
        if let Some((_, rest)) = line.split_once(marker) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}
