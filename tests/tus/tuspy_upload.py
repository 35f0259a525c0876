"""Uploads a file to switchboard's tus endpoint with tuspy (the real client).

    tuspy_upload.py ENDPOINT TOKEN FILE [--url UPLOAD_URL] [--chunk BYTES]

Without --url it creates the upload; with it, it resumes that upload (a
HEAD for the offset, then PATCHes from there). It prints one JSON line:
{"url": ..., "offset_before": N, "done": true|false, "error": "..."}.
A cut connection is not retried here: the caller decides when to resume.
"""

import argparse
import json
import os
import sys

from tusclient import client


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("token")
    ap.add_argument("file")
    ap.add_argument("--url")
    ap.add_argument("--chunk", type=int, default=64 << 20)
    ap.add_argument("--checksum", action="store_true", help="Upload-Checksum (sha1) on each part")
    args = ap.parse_args()
    tus = client.TusClient(args.endpoint, headers={"Authorization": "Bearer " + args.token})
    uploader = tus.uploader(
        file_path=args.file,
        url=args.url,
        chunk_size=args.chunk,
        metadata={"filename": os.path.basename(args.file)},
        retries=0,
        upload_checksum=args.checksum,
    )
    out = {"url": uploader.url, "offset_before": uploader.offset, "done": False}
    try:
        uploader.upload()
        out["done"] = uploader.offset == os.path.getsize(args.file)
    except Exception as e:  # a cut connection: report it, the caller resumes
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["url"] = uploader.url
    out["offset"] = uploader.offset
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
