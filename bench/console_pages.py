#!/usr/bin/env python3
"""Console page timings for bench/server.sh (issue 14): sign in with a token like a browser
(GET /login for the CSRF field and cookie, POST /login), then fetch every console page REPS
times over one keep-alive connection and print JSON: per page p50/p95 ms, the overall p95, the
overview's first (uncached) time, and the bytes of the first page with its stylesheet and icon.

usage: console_pages.py BASE_URL TOKEN [REPS]"""
import http.client, json, re, sys, time, urllib.parse

base, token = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 40
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def req(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r, data


def api(path):
    r, d = req("GET", path, headers={"Authorization": f"Bearer {token}"})
    return json.loads(d)


r, page = req("GET", "/login")
csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
login_cookie = r.getheader("Set-Cookie").split(";")[0]
form = urllib.parse.urlencode({"token": token, "csrf": csrf, "next": "/"})
r, _ = req("POST", "/login", body=form, headers={"Cookie": login_cookie, "Content-Type": "application/x-www-form-urlencoded"})
assert r.status == 303, r.status
session = [c for c in r.headers.get_all("Set-Cookie") if c.startswith("palisade_session=")][0].split(";")[0]
cookie = {"Cookie": session}

images = api("/api/v1/images?limit=1")["items"]
findings = api("/api/v1/findings?limit=1&sort=severity")["items"]
digest = images[0]["digest"] if images else ""
vuln = findings[0]["vuln_id"] if findings else "CVE-0000-0000"
checks = api("/api/v1/posture/findings?limit=1")["items"]
check = checks[0]["check_id"] if checks else ""

t0 = time.perf_counter()
r, first = req("GET", "/", headers=cookie)
overview_cold_ms = (time.perf_counter() - t0) * 1000
assert r.status == 200, r.status
_, css = req("GET", "/static/console.css", headers=cookie)
_, icon = req("GET", "/static/favicon.svg", headers=cookie)
first_page_bytes = len(first) + len(css) + len(icon)

pages = ["/", "/inventory", "/images", f"/images/{digest}", "/vulnerabilities", f"/vulnerabilities/{vuln}",
         "/vulnerabilities?kev=true&in_use=true", "/recommendations", f"/recommendations?check={check}", "/alerts",
         "/fleet", "/settings"]
out, every = {}, []
for p in pages:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        r, body = req("GET", p, headers=cookie)
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit(f"{p}: HTTP {r.status}")
    times.sort()
    every += times
    out[p] = {"p50_ms": round(times[len(times) // 2], 1), "p95_ms": round(times[int(len(times) * 0.95) - 1], 1), "bytes": len(body)}
every.sort()
print(json.dumps({"pages": out, "p95_ms": round(every[int(len(every) * 0.95) - 1], 1),
                  "max_page_p95_ms": max(v["p95_ms"] for v in out.values()),
                  "overview_cold_ms": round(overview_cold_ms, 1), "first_page_bytes": first_page_bytes}))
