//! `UdpEchoClient` and `TimeClient`: one datagram out, one back.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{ClientError, Target, deadline};

/// Largest payload of one UDP datagram over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A connected UDP socket doing lockstep request/reply.
struct UdpClient {
    socket: UdpSocket,
    addr: String,
    timeout: Duration,
    buf: Vec<u8>,
}

/// An ephemeral UDP socket of the target's family, connected to it, and
/// the target's label. Connecting filters out datagrams from anyone else and
/// lets the kernel report "port unreachable" as ECONNREFUSED.
///
/// # Errors
/// The address is not `HOST:PORT`, or the socket cannot be made.
pub(crate) async fn connected_socket(target: &str) -> Result<(UdpSocket, String), ClientError> {
    let target = Target::resolve(target).await?;
    let Target::Inet(addrs, label) = target else {
        return Err(ClientError::BadAddress(format!(
            "{} (UDP needs HOST:PORT)",
            target.label()
        )));
    };
    let remote = addrs[0];
    let local: SocketAddr = match remote {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| ClientError::io(&label, e))?;
    socket
        .connect(remote)
        .await
        .map_err(|e| ClientError::io(&label, e))?;
    Ok((socket, label))
}

impl UdpClient {
    async fn connect(target: &str, timeout: Duration) -> Result<Self, ClientError> {
        let (socket, addr) = connected_socket(target).await?;
        Ok(UdpClient {
            socket,
            addr,
            timeout,
            buf: vec![0u8; 65_536],
        })
    }

    async fn request(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(ClientError::TooLarge {
                what: "the message",
                len: data.len(),
                max: MAX_UDP_PAYLOAD,
            });
        }
        // A late reply to an earlier, timed-out request must not be taken
        // for the answer to this one.
        while self.socket.try_recv(&mut self.buf).is_ok() {}
        let addr = self.addr.clone();
        let map = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                ClientError::NoUdpService { addr: addr.clone() }
            }
            _ => ClientError::io(&addr, e),
        };
        self.socket.send(data).await.map_err(map)?;
        let n = deadline(&self.addr, self.timeout, async {
            self.socket.recv(&mut self.buf).await.map_err(map)
        })
        .await?;
        Ok(self.buf[..n].to_vec())
    }
}

/// A client of `udp-echo`.
pub struct UdpEchoClient(UdpClient);

impl UdpEchoClient {
    /// Binds a local socket for `target`'s address family and connects it.
    ///
    /// # Errors
    /// A bad or unresolvable address.
    pub async fn connect(target: &str, timeout: Duration) -> Result<Self, ClientError> {
        UdpClient::connect(target, timeout).await.map(Self)
    }

    pub fn addr(&self) -> &str {
        &self.0.addr
    }

    /// Sends one datagram and waits for its reply.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] (UDP gives no other sign of a lost datagram),
    /// [`ClientError::NoUdpService`] when the port is closed.
    pub async fn round_trip(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.0.request(data).await
    }
}

/// A client of `time`.
pub struct TimeClient(UdpClient);

impl TimeClient {
    /// Binds a local socket for `target`'s address family and connects it.
    ///
    /// # Errors
    /// A bad or unresolvable address.
    pub async fn connect(target: &str, timeout: Duration) -> Result<Self, ClientError> {
        UdpClient::connect(target, timeout).await.map(Self)
    }

    pub fn addr(&self) -> &str {
        &self.0.addr
    }

    /// Asks for the time in `format` (empty: the server's default). The
    /// reply is the text the server sent, `error: ...` included.
    ///
    /// # Errors
    /// As [`UdpEchoClient::round_trip`].
    pub async fn query(&mut self, format: &str) -> Result<String, ClientError> {
        let reply = self.0.request(format.as_bytes()).await?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}
