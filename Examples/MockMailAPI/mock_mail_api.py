#!/usr/bin/env python3
"""A stand-in for a mail API, for config/registration-mail.yaml: it prints every email it is
sent and answers 202. Run: python3 Examples/MockMailAPI/mock_mail_api.py [PORT] (default 8025)."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MailAPI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sink's client expects

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            mail = json.loads(body)
        except ValueError:
            return self.answer(400, {"error": "the body is not JSON"})
        if not isinstance(mail, dict) or "@" not in str(mail.get("to", "")):
            return self.answer(422, {"error": "'to' must be an email address"})
        print(f"mail to {mail['to']}: {mail.get('subject', '')} "
              f"(Idempotency-Key {self.headers.get('Idempotency-Key')})", flush=True)
        self.answer(202, {"queued": True})

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8025
    print(f"mock mail API on http://127.0.0.1:{port}/v1/send", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), MailAPI).serve_forever()
