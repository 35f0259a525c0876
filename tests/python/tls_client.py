"""An independent TLS client for exec and files, on Python's standard
library only: `ssl.create_default_context(cafile=...)` (hostname and expiry
checked), then the HMAC handshake and one request.

usage: python3 tls_client.py CAFILE HOST PORT KEY exec PROGRAM [ARGS...]
       python3 tls_client.py CAFILE HOST PORT KEY put NAME TEXT
exec prints the command's stdout and exits with its code; put prints the
reply's JSON. Any TLS failure exits 3 with the reason on stderr.
"""
import json
import socket
import ssl
import sys

# The framing, the handshake and a run request are written from
# docs/PROTOCOL.md once, in the exec client (this script's folder is on the
# import path when it runs).
from design_exec_client import handshake, recv_message, run, send_message


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
    if not handshake(sock, key.encode()):
        return 126
    if op == "put":
        name, text = args
        body = text.encode("utf-8")
        send_message(sock, {"op": "put", "name": name, "size": len(body)}, body)
        reply, _ = recv_message(sock)
        print(json.dumps(reply))
        return 0 if reply.get("ok") else 1
    return run(sock, args)


if __name__ == "__main__":
    sys.exit(main())
