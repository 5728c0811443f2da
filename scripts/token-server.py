#!/usr/bin/env python3
"""A minimal Docker registry token server (the bearer-token auth flow), for tests only.

    token-server.py PORT CERT KEY ISSUER SERVICE USER PASSWORD

GET /token?service=...&scope=repository:NAME:pull with HTTP basic auth USER:PASSWORD returns
{"token": JWT, "access_token": JWT}: RS256-signed (with openssl), the signing certificate in the
`x5c` header, the requested pull access granted. Wrong or missing credentials get 401.
"""
import base64, json, subprocess, sys, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs

PORT, CERT, KEY, ISSUER, SERVICE, USER, PASSWORD = sys.argv[1:8]

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def cert_der():
    pem = open(CERT).read()
    body = "".join(l for l in pem.splitlines() if "-----" not in l)
    return base64.b64decode(body)

def sign(data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=data, capture_output=True, check=True).stdout

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        u = urlparse(self.path)
        if u.path != "/token":
            self.send_response(404); self.end_headers(); return
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="token"')
            self.end_headers(); return
        q = parse_qs(u.query)
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der()).decode()]}
        claims = {"iss": ISSUER, "sub": USER, "aud": q.get("service", [SERVICE])[0], "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(uuid.uuid4()), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        token = signing_input.decode() + "." + b64url(sign(signing_input))
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(PORT)), H).serve_forever()
