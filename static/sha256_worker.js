// switchboard dashboard: a worker that hashes one file with SHA-256
// (static/sha256.js) a slice at a time, off the page's thread, so a large
// file neither freezes the page nor sits whole in memory. Posts
// {done, total} as it goes, then {sha256}; {error} if the file cannot be read.
// Not here: anything about uploads (static/tus.js).
import { Sha256 } from './sha256.js';

const SLICE = 4 * 1024 * 1024;

self.onmessage = async ({ data: file }) => {
  try {
    const hash = new Sha256();
    let last = 0;
    for (let at = 0; at < file.size; at += SLICE) {
      const bytes = new Uint8Array(await file.slice(at, at + SLICE).arrayBuffer());
      hash.update(bytes);
      const now = performance.now();
      if (now - last > 100) {
        last = now;
        self.postMessage({ done: at + bytes.length, total: file.size });
      }
    }
    self.postMessage({ sha256: hash.hex() });
  } catch (e) {
    self.postMessage({ error: `the file cannot be read (${e.message || e})` });
  }
};
