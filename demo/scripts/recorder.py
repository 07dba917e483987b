#!/usr/bin/env python3
"""A catch-all notification recorder for rehearsing the demo alerting pipeline by hand: an SMTP
server and an HTTP server answering in the shapes of the providers comms calls (Twilio, Sinch Fax,
Statuspage, Slack, PagerDuty). Every message is one JSON line in --log with its receive time
(`t`, Unix seconds). While the file --fail-sms exists, Twilio Messages answers 500 (to rehearse
the SMS -> voice failover). Standard library only (smtpd is deprecated but present in 3.11).

    recorder.py --bind 172.18.0.1 --smtp-port 2525 --http-port 8025 --log /tmp/rec.jsonl
"""
import argparse
import email
import email.header
import email.policy
import json
import os
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd

LOCK = threading.Lock()


def record(log, entry):
    entry["t"] = time.time()
    with LOCK, open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


class Mail(smtpd.SMTPServer):
    def __init__(self, addr, log):
        super().__init__(addr, None, decode_data=False)
        self.log = log

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        message = email.message_from_bytes(data, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        record(self.log, {
            "kind": "smtp", "from": mailfrom, "to": rcpttos, "subject": str(message["subject"]),
            "text": text.get_content() if text else "",
        })


def handler(log, fail_sms):
    class Provider(BaseHTTPRequestHandler):
        def answer(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            path = self.path
            record(log, {"kind": "http", "method": self.command, "path": path, "body": body[:4000]})
            status, reply = 200, {"ok": True}
            if path.endswith("/Messages.json"):
                if os.path.exists(fail_sms):
                    status, reply = 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
                else:
                    status, reply = 201, {"sid": "SM%d" % int(time.time() * 1e6), "status": "queued"}
            elif path.endswith("/Calls.json"):
                status, reply = 201, {"sid": "CA%d" % int(time.time() * 1e6), "status": "queued"}
            elif path.endswith("/incidents") and self.command == "POST":
                status, reply = 201, {"id": "inc%d" % int(time.time() * 1e6), "status": "investigating"}
            elif "/incidents/" in path:
                status, reply = 200, {"id": path.rsplit("/", 1)[1], "status": "resolved"}
            elif path == "/v2/enqueue":
                status, reply = 202, {"status": "success", "message": "Event processed"}
            elif path.endswith("/faxes"):
                status, reply = 200, {"id": "fax%d" % int(time.time() * 1e6), "status": "QUEUED"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PATCH = do_PUT = do_GET = answer

        def log_message(self, *args):
            pass

    return Provider


class Server(ThreadingHTTPServer):
    # comms opens all its requests at once; the default backlog of 5 drops SYNs beyond it, and
    # the client's retransmission a second later would look like a slow fan-out.
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-sms", default="/nonexistent")
    args = parser.parse_args()
    Mail((args.bind, args.smtp_port), args.log)
    http = Server((args.bind, args.http_port), handler(args.log, args.fail_sms))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print("recorder listening", flush=True)
    asyncore.loop(timeout=0.05)


if __name__ == "__main__":
    main()
