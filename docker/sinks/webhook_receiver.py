#!/usr/bin/env python3
"""A Standard Webhooks receiver for the Compose stack, in Python's standard
library only: stands in for the operator's relay to APNs or FCM so that what
notification-service pushes can be seen.

    webhook_receiver.py --secret-file /secrets/webhook-secret
    webhook_receiver.py --self-test

Every POST (any path) is checked: `webhook-signature` must hold
`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` keyed
with the secret (`whsec_` then base64), and the timestamp must be within five
minutes of this clock, as the specification asks of receivers. The answer is
204 when both hold and 401 when not. Each call, either way, is appended as one
JSON line {"id", "timestamp", "verified", "type", "body"} to the spool file
(/var/spool/webhooks/calls.jsonl), which a person can read with `tail -f`.
GET /healthz answers 200.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "whsec_"
# The specification's replay window.
TOLERANCE_SECONDS = 5 * 60
# Notifications are small; anything bigger is not ours.
MAX_BODY_BYTES = 1 << 20

# The specification's test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = "1614265330"
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def load_key(secret):
    """The HMAC key in a `whsec_<base64>` secret."""
    secret = secret.strip()
    if secret.startswith(PREFIX):
        secret = secret[len(PREFIX):]
    try:
        return base64.b64decode(secret, validate=True)
    except binascii.Error as e:
        raise ValueError(f"the secret is not base64 after {PREFIX}: {e}") from None


def sign(key, msg_id, timestamp, body):
    """The `v1,...` signature of one call."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(key, msg_id, timestamp, signatures, body, now=None):
    """(verified, reason). `signatures` is the header: space-separated
    `version,signature` pairs, any of which may match. With `now`, the
    timestamp must also be within the tolerance of it."""
    if not msg_id or not timestamp or not signatures:
        return False, "a webhook-id, webhook-timestamp or webhook-signature header is missing"
    try:
        seconds = int(timestamp)
    except ValueError:
        return False, f"webhook-timestamp {timestamp!r} is not a number"
    if now is not None and abs(now - seconds) > TOLERANCE_SECONDS:
        return False, f"webhook-timestamp is {int(now) - seconds} s from this clock"
    expected = sign(key, msg_id, timestamp, body).encode()
    # Constant time, against every signature offered (a rotation sends two).
    if any(hmac.compare_digest(s.encode(), expected) for s in signatures.split(" ")):
        return True, "ok"
    return False, "no signature matches"


def self_test():
    key = load_key(SPEC_SECRET)
    checks = [
        ("the specification's signature", sign(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE),
        ("verified without a clock", verify(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE, SPEC_BODY)[0]),
        ("one of several signatures",
         verify(key, SPEC_ID, SPEC_TIMESTAMP, "v1,AAAA " + SPEC_SIGNATURE, SPEC_BODY)[0]),
        ("a tampered body is refused",
         not verify(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE, b'{"test": 2432232315}')[0]),
        ("another id is refused", not verify(key, "msg_other", SPEC_TIMESTAMP, SPEC_SIGNATURE, SPEC_BODY)[0]),
        ("a stale timestamp is refused",
         not verify(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE, SPEC_BODY, now=time.time())[0]),
    ]
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(f"self-test: {'ok  ' if ok else 'FAIL'} {name}")
    return 1 if failed else 0


class Receiver(BaseHTTPRequestHandler):
    key = b""
    spool = ""
    # ThreadingHTTPServer: one line at a time into the spool.
    spool_lock = threading.Lock()
    server_version = "webhook-receiver"

    def do_GET(self):
        self.answer(200 if self.path == "/healthz" else 404)

    def do_POST(self):
        try:
            length = int(self.headers.get("content-length", ""))
        except ValueError:
            self.answer(411)
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.answer(413)
            return
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")
        verified, reason = verify(
            self.key, msg_id, timestamp, self.headers.get("webhook-signature", ""), body, now=time.time()
        )
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        kind = payload.get("type") if isinstance(payload, dict) else None
        record = {
            "id": msg_id,
            "timestamp": int(timestamp) if timestamp.isdigit() else timestamp,
            "verified": verified,
            "type": kind,
            "body": payload,
        }
        with self.spool_lock, open(self.spool, "a", encoding="utf-8") as spool:
            spool.write(json.dumps(record, ensure_ascii=False) + "\n")
        if not verified:
            self.log_message("refused %s: %s", msg_id or "a call", reason)
        self.answer(204 if verified else 401)

    def answer(self, status):
        self.send_response(status)
        if status == 204:
            self.end_headers()
            return
        text = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_request(self, code="-", size="-"):
        # Health checks every few seconds would drown the calls.
        if self.path != "/healthz":
            super().log_request(code, size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-file", help="the file holding the whsec_ secret")
    parser.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT (default 0.0.0.0:8080)")
    parser.add_argument("--spool", default="/var/spool/webhooks/calls.jsonl", help="where calls are appended")
    parser.add_argument("--self-test", action="store_true", help="check the specification's test vector and exit")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.secret_file:
        parser.error("--secret-file is required")
    try:
        with open(args.secret_file, encoding="utf-8") as f:
            Receiver.key = load_key(f.read())
    except (OSError, ValueError) as e:
        print(f"webhook-receiver: cannot use {args.secret_file}: {e}", file=sys.stderr)
        return 1
    Receiver.spool = args.spool
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Receiver)
    print(f"webhook-receiver: listening on {args.listen}, appending calls to {args.spool}", file=sys.stderr, flush=True)
    # As PID 1 in a container, SIGTERM (docker stop) does nothing unless
    # handled.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
