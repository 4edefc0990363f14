//! `admin-api-keys healthcheck`: whether the server at `BIND_ADDR` is ready, for container
//! health checks in images without curl.
//!
//! Policy: one plain HTTP/1.1 `GET /readyz` over a `TcpStream`, all within one deadline;
//! success is a `200` status line and nothing else (a 503 from a server that cannot reach its
//! database is a failure). A wildcard listen address (`0.0.0.0`, `::`) is checked on loopback.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Checks `/readyz` at `bind_addr` within `timeout`; the error is the one line to print.
pub fn check(bind_addr: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addr = target(bind_addr)?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| format!("{addr} did not answer within {}s", timeout.as_secs()))
    };
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: admin-api-keys-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request to {addr}: {e}"))?;
    // Only the status line matters; read until it is complete.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "{addr} did not answer within {}s",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("no answer from {addr}: {e}")),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status = std::str::from_utf8(line)
        .ok()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("");
    match status {
        "200" => Ok(()),
        "" => Err(format!("{addr} did not answer in HTTP")),
        other => Err(format!("{addr} answered {other} on /readyz")),
    }
}

/// The address to check: the listen address, with a wildcard host turned into loopback.
fn target(bind_addr: &str) -> Result<SocketAddr, String> {
    let mut addr = bind_addr
        .to_socket_addrs()
        .map_err(|e| format!("BIND_ADDR {bind_addr:?} is not an address: {e}"))?
        .next()
        .ok_or_else(|| format!("BIND_ADDR {bind_addr:?} resolves to no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    if addr.port() == 0 {
        return Err("BIND_ADDR has port 0: give the port the server listens on".to_owned());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn a_wildcard_listen_address_is_checked_on_loopback() {
        assert_eq!(
            target("0.0.0.0:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(target("[::]:8080").unwrap().to_string(), "[::1]:8080");
        assert_eq!(target("127.0.0.1:9").unwrap().to_string(), "127.0.0.1:9");
        assert!(target("127.0.0.1:0").is_err());
    }
}
