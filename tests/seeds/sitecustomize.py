# Loaded by every tutorial program the tests run (PYTHONPATH=tests/seeds).
#
# 1. hmac.new(key, msg) without a digestmod meant HMAC-MD5 until Python 3.8,
#    which made digestmod required: the tutorials of 001 were written for the
#    old default, so it is given back here (and only when digestmod is absent).
# 2. When SEED_ANNOUNCE_BIND is set (the tests set it for the tutorials'
#    *servers*), a bind to any address binds 127.0.0.1 port 0 instead, and the
#    port the system chose is written to stderr as "SEED_PORT <n>" once the
#    socket takes peers (a UDP socket when bound, a TCP one when listening):
#    the server is ready before the test connects, without a guessed free
#    port. Clients get their address changed in their text instead (one
#    literal replaced).
import hashlib
import hmac
import os
import socket
import sys

_new = hmac.new


def _new_md5(key, msg=None, digestmod=None):
    return _new(key, msg, digestmod or hashlib.md5)


hmac.new = _new_md5

if os.environ.get("SEED_ANNOUNCE_BIND"):
    _bind = socket.socket.bind
    _listen = socket.socket.listen

    def _announce(sock):
        sys.stderr.write("SEED_PORT %d\n" % sock.getsockname()[1])
        sys.stderr.flush()

    def _announcing_bind(self, address):
        _bind(self, ("127.0.0.1", 0))
        if self.type == socket.SOCK_DGRAM:
            _announce(self)

    def _announcing_listen(self, *backlog):
        _listen(self, *backlog)
        _announce(self)

    socket.socket.bind = _announcing_bind
    socket.socket.listen = _announcing_listen
