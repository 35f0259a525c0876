"""An exec client written from the protocol description alone (docs/PROTOCOL.md) (no switchboard code):
the HMAC handshake, then one request, its output streamed, its final message.

usage: python3 design_exec_client.py HOST PORT KEY PROGRAM [ARGS...]
Prints stdout/stderr bytes as they come, then exits with the remote code
(125 for an `error` message, printing it on stderr).
"""
import hmac
import json
import socket
import struct
import sys


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("server closed the connection")
        data += chunk
    return data


def recv_message(sock):
    (header_len,) = struct.unpack(">I", recv_exact(sock, 4))
    if header_len > 64 * 1024:
        raise ValueError("header too long")
    header = json.loads(recv_exact(sock, header_len).decode("utf-8"))
    body = recv_exact(sock, header.get("size", 0))
    return header, body


def send_message(sock, header, body=b""):
    if body:
        header = dict(header, size=len(body))
    data = json.dumps(header).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data + body)


def handshake(sock, key):
    """Answers the challenge with `key` (bytes); returns True if accepted,
    else prints the refusal."""
    challenge = recv_exact(sock, 32)
    sock.sendall(hmac.new(key, challenge, "sha256").digest())
    verdict, _ = recv_message(sock)
    if not verdict.get("ok"):
        print("refused:", verdict.get("error"), file=sys.stderr)
    return bool(verdict.get("ok"))


def run(sock, argv):
    """Runs `argv`, streaming its output; returns the remote exit code."""
    send_message(sock, {"op": "run", "argv": argv})
    while True:
        header, body = recv_message(sock)
        kind = header.get("type")
        if kind == "stdout":
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
        elif kind == "stderr":
            sys.stderr.buffer.write(body)
        elif kind == "exit":
            return header["code"] if "code" in header else 128 + header["signal"]
        elif kind == "error":
            print("error:", header["error"], file=sys.stderr)
            return 125
        else:
            raise ValueError("unexpected message %r" % header)


def main():
    host, port, key, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    sock = socket.create_connection((host, port), timeout=10)
    if not handshake(sock, key.encode()):
        return 126
    return run(sock, argv)


if __name__ == "__main__":
    sys.exit(main())
