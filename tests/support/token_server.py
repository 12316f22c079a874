#!/usr/bin/env python3
"""A tiny bearer-token endpoint for docker-registry's `auth.token` (tests only).

Usage: token_server.py CERT KEY ISSUER SERVICE USER PASS

Binds 127.0.0.1 on a free port and prints the port as the first line of standard output.
GET /token (any path) with HTTP Basic USER:PASS (or docker's OAuth2 form: POST with
grant_type=password&username=USER&password=PASS&scope=...) answers
  {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...}
where the JWT (RS256, signed with KEY by the `openssl` CLI) carries CERT in its x5c header
and grants every requested `scope` (repository:NAME:ACTIONS, several `scope` parameters or
space-separated ones). Without credentials, or with wrong ones: 401. Each request is logged
on standard error as one line:
  token <status> account=<account> scope=<scope,...>
Only the Python standard library and the `openssl` CLI are used.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der_b64(cert_pem):
    der = subprocess.run(["openssl", "x509", "-in", cert_pem, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def parse_scopes(values):
    """[{type, name, actions}] from `scope` values (each may hold space-separated scopes)."""
    out = []
    for v in values:
        for s in v.split():
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if not typ or not name:
                continue
            acts = [a for a in actions.split(",") if a]
            out.append({"type": typ, "name": name, "actions": acts})
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "ocishim-test-token/1"

    def log_message(self, fmt, *args):  # the default access log: replaced by log_token
        pass

    def log_token(self, status, account, scopes):
        names = ",".join(f"{s['type']}:{s['name']}:{'+'.join(s['actions'])}" for s in scopes)
        sys.stderr.write(f"token {status} account={account} scope={names}\n")
        sys.stderr.flush()

    def reply(self, status, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def credentials(self):
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:].strip()).decode().partition(":")
        except Exception:
            return None
        return user, pw

    def do_GET(self, form=None):
        cfg = self.server.cfg
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        creds = self.credentials()
        if form is not None:
            for k, v in form.items():
                q.setdefault(k, []).extend(v)
            if (form.get("grant_type") or [""])[0] == "password":
                creds = ((form.get("username") or [""])[0], (form.get("password") or [""])[0])
        scopes = parse_scopes(q.get("scope", []))
        account = (q.get("account") or q.get("username") or [""])[0]
        if creds != (cfg["user"], cfg["password"]):
            self.log_token(401, account, scopes)
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "authentication required"}]},
                       {"WWW-Authenticate": 'Basic realm="ocishim-test-token"'})
            return
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [cfg["x5c"]]}
        claims = {
            "iss": cfg["issuer"], "sub": creds[0], "aud": cfg["service"],
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": b64url(os.urandom(12)),
            "access": [{"type": s["type"], "name": s["name"], "actions": s["actions"]}
                       for s in scopes],
        }
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", cfg["key"]],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        jwt = signing_input + "." + b64url(sig)
        self.log_token(200, account, scopes)
        self.reply(200, {"token": jwt, "access_token": jwt, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n > 0 else ""
        self.do_GET(form=urllib.parse.parse_qs(body))


def main():
    if len(sys.argv) != 7:
        sys.stderr.write(__doc__)
        return 2
    cert, key, issuer, service, user, password = sys.argv[1:]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.cfg = {"x5c": cert_der_b64(cert), "key": key, "issuer": issuer, "service": service,
               "user": user, "password": password}
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
