// Uploads a file to switchboard's tus endpoint with tus-js-client (the real
// client, in Node), letting it resume on its own after a cut connection.
//
//   node tus_js_upload.js ENDPOINT TOKEN FILE [UPLOAD_URL]
//
// With UPLOAD_URL it resumes that upload (a server restart in between).
// Prints one JSON line: {"url", "done", "error", "errors"} where `errors`
// counts the failed requests it retried past. NODE_PATH names the folder
// tus-js-client was installed into.
'use strict';
const fs = require('fs');
const path = require('path');
const tus = require('tus-js-client');

const [endpoint, token, file, uploadUrl] = process.argv.slice(2);
const data = fs.readFileSync(file);
let retried = 0;
const upload = new tus.Upload(data, {
  endpoint,
  uploadUrl: uploadUrl || null,
  headers: { Authorization: 'Bearer ' + token },
  metadata: { filename: path.basename(file) },
  retryDelays: [0, 200, 500, 1000, 2000],
  onShouldRetry: () => { retried += 1; return true; },
  onError: (err) => {
    console.log(JSON.stringify({ url: upload.url, done: false, error: String(err), errors: retried }));
    process.exit(0);
  },
  onSuccess: () => {
    console.log(JSON.stringify({ url: upload.url, done: true, errors: retried }));
    process.exit(0);
  },
});
upload.start();
