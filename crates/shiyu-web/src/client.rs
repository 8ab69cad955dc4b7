//! A small HTTP/1.1 client with keep-alive, for the project's own tests and load benchmarks: enough of the
//! protocol to talk to `shiyu serve`, no more.

use serde_json::Value;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One keep-alive connection; remembers the session cookie and CSRF token of a sign-in.
#[derive(Debug)]
pub struct HttpClient {
    address: SocketAddr,
    /// The address connections come from, when not the system's choice.
    from: Option<IpAddr>,
    connection: Option<BufReader<TcpStream>>,
    pub cookie: Option<String>,
    pub csrf_token: Option<String>,
}

impl HttpClient {
    pub fn new(address: SocketAddr) -> HttpClient {
        HttpClient { address, from: None, connection: None, cookie: None, csrf_token: None }
    }

    /// A client whose connections come from `from`: on loopback any of 127.0.0.0/8, so that a test can be
    /// several clients at several addresses.
    pub fn from_address(address: SocketAddr, from: IpAddr) -> HttpClient {
        HttpClient { from: Some(from), ..HttpClient::new(address) }
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        match self.from {
            None => TcpStream::connect(self.address).await,
            Some(from) => {
                let socket = if from.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
                socket.bind(SocketAddr::new(from, 0))?;
                socket.connect(self.address).await
            }
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<HttpResponse> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(token) = self.csrf_token.as_ref().filter(|_| method != "GET") {
            head.push_str(&format!("X-CSRF-Token: {token}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.map_or(0, <[u8]>::len)));
        // A kept-alive connection may have been closed by the server: retry once on a fresh one.
        for attempt in 0..2 {
            if self.connection.is_none() {
                let stream = self.connect().await?;
                // Requests go out whole in one write; without this Nagle holds them back for the peer's
                // delayed acknowledgement.
                stream.set_nodelay(true)?;
                self.connection = Some(BufReader::new(stream));
            }
            match self.exchange(head.as_bytes(), body).await {
                Ok(response) => {
                    if let Some(set) = response.header("set-cookie") {
                        self.cookie = set.split(';').next().map(str::to_string).filter(|c| !c.ends_with('='));
                    }
                    return Ok(response);
                }
                Err(error) if attempt == 0 => {
                    self.connection = None;
                    let _ = error;
                }
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::other("unreachable"))
    }

    async fn exchange(&mut self, head: &[u8], body: Option<&[u8]>) -> io::Result<HttpResponse> {
        let connection = self.connection.as_mut().ok_or_else(|| io::Error::other("no connection"))?;
        let mut request = Vec::with_capacity(head.len() + body.map_or(0, <[u8]>::len));
        request.extend_from_slice(head);
        request.extend_from_slice(body.unwrap_or_default());
        connection.get_mut().write_all(&request).await?;
        let mut line = String::new();
        if connection.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other("bad status line"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            connection.read_line(&mut line).await?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let find =
            |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(length, 0);
            connection.read_exact(&mut body).await?;
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                connection.read_line(&mut line).await?;
                let size =
                    usize::from_str_radix(line.trim(), 16).map_err(|_| io::Error::other("bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                connection.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        if find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            self.connection = None;
        }
        Ok(HttpResponse { status, headers, body })
    }

    /// Sends JSON (or nothing) and returns the status and the JSON answer.
    pub async fn json(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let headers: &[(&str, &str)] =
            if bytes.is_some() { &[("Content-Type", "application/json")] } else { &[] };
        let response = self.request(method, path, headers, bytes.as_deref()).await?;
        Ok((response.status, response.json()))
    }

    /// Signs in; later requests carry the session cookie and CSRF token.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> io::Result<(u16, Value)> {
        let (status, body) = self
            .json(
                "POST",
                "/api/session",
                Some(&serde_json::json!({"username": username, "password": password})),
            )
            .await?;
        self.csrf_token = body["csrf_token"].as_str().map(str::to_string);
        Ok((status, body))
    }
}

/// One Server-Sent Event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// An open `text/event-stream` response, read message by message.
#[derive(Debug)]
pub struct EventStream {
    reader: BufReader<TcpStream>,
    pub status: u16,
    buffer: String,
}

impl EventStream {
    /// Opens a stream on its own connection.
    pub async fn open(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<EventStream> {
        let mut stream = TcpStream::connect(address).await?;
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            if line.trim_end().is_empty() {
                break;
            }
        }
        Ok(EventStream { reader, status, buffer: String::new() })
    }

    /// The next message that carries data (keep-alive comments are skipped).
    pub async fn next(&mut self) -> io::Result<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = SseMessage { id: None, event: None, data: String::new() };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        message.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        message.event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        message.data.push_str(v.trim_start());
                    }
                }
                if !message.data.is_empty() {
                    return Ok(message);
                }
                continue;
            }
            // The body is chunked: a size line, the chunk, a blank line.
            let mut size = String::new();
            if self.reader.read_line(&mut size).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream closed"));
            }
            let size =
                usize::from_str_radix(size.trim(), 16).map_err(|_| io::Error::other("bad chunk size"))?;
            // The last chunk: the server ended the stream (the connection itself may stay open).
            if size == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended"));
            }
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).await?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk[..size]));
        }
    }
}
