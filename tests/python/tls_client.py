"""An independent TLS client for exec and files, on Python's standard
library only: `ssl.create_default_context(cafile=...)` (hostname and expiry
checked), then the HMAC handshake and one request.

usage: python3 tls_client.py CAFILE HOST PORT KEY exec PROGRAM [ARGS...]
       python3 tls_client.py CAFILE HOST PORT KEY put NAME TEXT
exec prints the command's stdout and exits with its code; put prints the
reply's JSON. Any TLS failure exits 3 with the reason on stderr.
"""
import hmac
import json
import socket
import ssl
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
    data = json.dumps(header).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data + body)


def main():
    cafile, host, port, key, op, args = (
        sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:])
    context = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((host, port), timeout=10)
    try:
        sock = context.wrap_socket(raw, server_hostname=host)
    except ssl.SSLError as e:
        print("tls failed:", e, file=sys.stderr)
        return 3
    print("tls:", sock.version(), file=sys.stderr)
    challenge = recv_exact(sock, 32)
    sock.sendall(hmac.new(key.encode(), challenge, "sha256").digest())
    verdict, _ = recv_message(sock)
    if not verdict.get("ok"):
        print("refused:", verdict.get("error"), file=sys.stderr)
        return 126
    if op == "put":
        name, text = args
        body = text.encode("utf-8")
        send_message(sock, {"op": "put", "name": name, "size": len(body)}, body)
        reply, _ = recv_message(sock)
        print(json.dumps(reply))
        return 0 if reply.get("ok") else 1
    send_message(sock, {"op": "run", "argv": args})
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


if __name__ == "__main__":
    sys.exit(main())
