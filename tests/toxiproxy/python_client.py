"""Drives switchboard's Toxiproxy API with the real PyPI client
(toxiproxy-python), as a user's test suite would: create a proxy in front
of echo, add and update a latency toxic and measure it, populate, reset,
and the errors the client maps to its exceptions. Run by tests/toxiproxy.rs
with TOXIPROXY_HOST, TOXIPROXY_PORT and ECHO_ADDR set; prints one JSON
line of figures."""

import json
import os
import socket
import statistics
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

echo = os.environ["ECHO_ADDR"]
server = Toxiproxy()
server.update_api_consumer(os.environ["TOXIPROXY_HOST"], int(os.environ["TOXIPROXY_PORT"]))


def connect(listen):
    host, port = listen.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rtt(s, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            got += s.recv(4 - len(got))
        assert got == b"PING", got
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError("%s did not raise %s" % (fn, exc))


assert server.running()
assert b"version" in server.version()
proxy = server.create(upstream=echo, name="py-px")
assert proxy.enabled is True and proxy.upstream == echo
s = connect(proxy.listen)
base = rtt(s, 5)

proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 0})
toxic = proxy.get_toxic("latency_downstream")
assert toxic.attributes["latency"] == 100, toxic.attributes
with100 = rtt(s, 5)
assert with100 >= 100, with100

# The client has no update call: its own API layer posts the change.
APIConsumer.post("/proxies/py-px/toxics/latency_downstream", json={"attributes": {"latency": 300}})
assert proxy.get_toxic("latency_downstream").attributes["latency"] == 300
with300 = rtt(s, 3)
assert with300 >= 300, with300

raises(ProxyExists, APIConsumer.post, "/proxies", json={"name": "py-px", "upstream": echo})
raises(NotFound, APIConsumer.get, "/proxies/no-such-proxy")
raises(InvalidToxic, proxy.add_toxic, type="no_such_type")
raises(ProxyExists, proxy.add_toxic, type="latency")

made = server.populate([{"name": "py-pop", "upstream": echo, "listen": "127.0.0.1:0"}])
assert [p.name for p in made] == ["py-pop"], made
assert set(server.proxies()) >= {"py-px", "py-pop"}

assert server.reset()
assert proxy.toxics() == {}
after = rtt(s, 5)
assert after < 100, after
s.close()

proxy.disable()
assert server.get_proxy("py-px").enabled is False
proxy.enable()
server.destroy(server.get_proxy("py-pop"))
assert server.get_proxy("py-pop") is None
print(json.dumps({"client": "toxiproxy-python", "base": base, "with100": with100,
                  "with300": with300, "after": after}))
