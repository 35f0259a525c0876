// switchboard dashboard: the "B/S beside C/S" helpers the Connections,
// Send, Files and Console pages share (timings, hex dumps, the Python and
// shell snippets that do the same as the page over a raw socket).
import { api } from './app.js';

/** `123 µs` or `4.56 ms`. */
export function micros(us) {
  return us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(2)} ms`;
}

/** Hex dump: 16 bytes a line, with the printable ASCII beside. */
export function hexdump(hex) {
  const bytes = hex.match(/../g) || [];
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.slice(i, i + 16);
    const ascii = row.map((b) => { const c = parseInt(b, 16); return c >= 32 && c < 127 ? String.fromCharCode(c) : '.'; }).join('');
    lines.push(`${row.join(' ').padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n') || '(nothing)';
}

/** A Python bytes literal for hex bytes. */
export function pyBytes(hex) {
  const bytes = (hex.match(/../g) || []).map((b) => parseInt(b, 16));
  return "b'" + bytes.map((c) => {
    if (c === 0x5c) return '\\\\';
    if (c === 0x27) return "\\'";
    return c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }).join('') + "'";
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shq(word) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An address a client on this machine can dial: a wildcard listen
 *  address (`0.0.0.0:9000`, `[::]:9000`) becomes the loopback one. */
export function reachable(addr) {
  return (addr || '').replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
}

/** `("127.0.0.1", 9000)` from `127.0.0.1:9000` or `[::1]:9000`. */
export function pyAddr(target) {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  return { tuple: `("${host}", ${target.slice(i + 1)})`, v6: host.includes(':') };
}

/** Python for an authenticated message-protocol exchange (exec, files),
 *  as docs/PROTOCOL.md describes it. */
export function pyMessagePreamble(target) {
  return [
    'import hashlib, hmac, json, socket, struct',
    '',
    'KEY = open("switchboard-data/key", "rb").read().strip()  # or SWITCHBOARD_KEY',
    `s = socket.create_connection(${pyAddr(target).tuple})`,
    'def exactly(n):',
    '    b = b""',
    '    while len(b) < n: b += s.recv(n - len(b)) or exit("closed")',
    '    return b',
    'def send(header, body=b""):',
    '    h = json.dumps(header).encode()',
    '    s.sendall(struct.pack(">I", len(h)) + h + body)',
    'def receive(body=True):',
    '    h = json.loads(exactly(struct.unpack(">I", exactly(4))[0]))',
    '    return h, exactly(h.get("size", 0)) if body else b""',
    's.sendall(hmac.new(KEY, exactly(32), hashlib.sha256).digest())',
    'print(receive()[0])  # {"ok": true}',
  ].join('\n');
}

/**
 * A comment line for "the same from a shell" of an instance that takes
 * connections through a trusted proxy only (`accept_proxy`): a client
 * dialling it directly is turned away. Empty otherwise.
 */
export function proxyNote(name, acceptProxy) {
  return acceptProxy
    ? `# ${name} takes connections through a trusted proxy only (accept_proxy): run this against that proxy's address\n`
    : '';
}

/** Where a shell reaches instance `name`, and its {@link proxyNote}. */
export async function serviceReach(name) {
  try {
    const s = await api('GET', `/api/v1/services/${name}`);
    return { addr: s.local_addr || s.listen, note: proxyNote(name, s.accept_proxy) };
  } catch (_) {
    return { addr: `<${name} address>`, note: '' };
  }
}
