// Drives switchboard's Toxiproxy API with the real npm client
// (toxiproxy-node-client), as a user's test suite would: create a proxy in
// front of echo, add and update a latency toxic and measure it, the
// documented errors, populate, reset. Run by tests/toxiproxy.rs with
// TOXIPROXY_URL and ECHO_ADDR set; prints one JSON line of figures.
"use strict";
const net = require("net");
const assert = require("assert");
const { Toxiproxy } = require("toxiproxy-node-client");

const url = process.env.TOXIPROXY_URL;
const echo = process.env.ECHO_ADDR;

function connect(listen) {
  const i = listen.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)) });
    s.setNoDelay(true);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

// The median round trip (ms) of `n` echoes of "ping" on socket `s`.
async function rtt(s, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      s.once("data", (d) => (d.toString() === "PING" ? resolve() : reject(new Error("got " + d))));
      s.write("ping");
    });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function rejects(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.match(e.message, new RegExp("status code " + status), e.message);
    return true;
  });
}

async function main() {
  const toxiproxy = new Toxiproxy(url);
  const version = await toxiproxy.getVersion();
  assert.match(version, /"version"/);

  const proxy = await toxiproxy.createProxy({ name: "node-px", listen: "127.0.0.1:0", upstream: echo });
  assert.strictEqual(proxy.name, "node-px");
  assert.strictEqual(proxy.upstream, echo);
  assert.strictEqual(proxy.enabled, true);
  assert.match(proxy.listen, /^127\.0\.0\.1:[1-9]\d*$/);
  const s = await connect(proxy.listen);
  const base = await rtt(s, 5);

  const toxic = await proxy.addToxic({
    type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 100, jitter: 0 },
  });
  assert.strictEqual(toxic.name, "latency_downstream");
  assert.strictEqual(toxic.attributes.latency, 100);
  const with100 = await rtt(s, 5);
  assert.ok(with100 >= 100, "latency 100: " + with100);

  const updated = await toxic.update({ attributes: { latency: 300 } });
  assert.strictEqual(updated.attributes.latency, 300);
  const with300 = await rtt(s, 3);
  assert.ok(with300 >= 300, "latency 300: " + with300);
  const again = await proxy.getToxic("latency_downstream");
  assert.strictEqual(again.attributes.latency, 300);

  // The documented errors.
  await rejects(toxiproxy.createProxy({ name: "node-px", listen: "127.0.0.1:0", upstream: echo }), 409);
  await rejects(toxiproxy.get("no-such-proxy"), 404);
  await rejects(proxy.addToxic({ type: "latency", stream: "downstream", attributes: { latency: 1 } }), 409);
  await rejects(proxy.addToxic({ type: "no_such_type" }), 400);
  await rejects(proxy.addToxic({ type: "latency", stream: "sideways" }), 400);
  await rejects(proxy.getToxic("no_such_toxic"), 404);

  const populated = await toxiproxy.populate([
    { name: "node-pop", listen: "127.0.0.1:0", upstream: echo, enabled: true },
    { name: "node-px", listen: proxy.listen, upstream: echo, enabled: true },
  ]);
  assert.ok(populated["node-pop"], "populate made node-pop");
  assert.ok(populated["node-px"], "populate kept node-px");
  const all = await toxiproxy.getAll();
  assert.ok(all["node-pop"] && all["node-px"]);

  await toxiproxy.reset();
  await rejects(proxy.getToxic("latency_downstream"), 404);
  const after = await rtt(s, 5);
  assert.ok(after < 100, "after reset: " + after);
  s.destroy();

  const off = await proxy.update({ enabled: false });
  assert.strictEqual(off.enabled, false);
  await populated["node-pop"].remove();
  await rejects(toxiproxy.get("node-pop"), 404);
  console.log(JSON.stringify({ client: "toxiproxy-node-client", base, with100, with300, after }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
