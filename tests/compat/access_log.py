"""Read attachd's own access log (docs/operations.md, "Logs") for the
compatibility suite: every request a client made, with its method, path,
query and status, as attachd saw it.

Access lines are written in batches (a quarter of a second late at most) and
always at exit, so `captured()` stops the daemon first (SIGTERM: it must exit
0) and reads the whole log then.
"""
import re

_ACCESS = re.compile(r"^(?P<time>\S+) info access (?P<fields>.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Request:
    def __init__(self, time, fields):
        self.time = time                # when it was answered, to the millisecond
        self.method = fields["method"]
        self.path = fields["path"]
        self.query = fields.get("query", "")
        self.status = int(fields["status"])
        self.ua = fields.get("ua", "")

    @property
    def shape(self):
        """The path with every uuid replaced by {id}: what a rule matches."""
        return _UUID.sub("{id}", self.path)

    def __repr__(self):
        q = "?" + self.query if self.query else ""
        return f"{self.method} {self.path}{q} -> {self.status} ({self.ua})"


def parse(text):
    """The requests of a log, in the order they were answered (each thread
    writes its own lines: a stable sort by time keeps one thread's order)."""
    out = []
    for line in text.splitlines():
        m = _ACCESS.search(line)
        if not m:
            continue
        fields = {}
        for k, v in _FIELD.findall(m.group("fields")):
            fields[k] = v[1:-1] if v.startswith('"') else v
        out.append(Request(m.group("time"), fields))
    out.sort(key=lambda r: r.time)
    return out


def captured(daemon):
    """Stop DAEMON (it must exit 0 on SIGTERM) and return its requests."""
    rc = daemon.stop()
    log = daemon.read_log()
    assert rc == 0, "attachd did not exit 0 on SIGTERM:\n" + log
    return parse(log)


def check(requests, ua_prefix, expected):
    """Every request whose User-Agent starts with UA_PREFIX: none may be a
    5xx, and a 404 or 405 only when EXPECTED (a list of (method, path shape,
    status, reason): requests Nova answers the same way) names it. Returns
    the client's requests."""
    mine = [r for r in requests if r.ua.startswith(ua_prefix)]
    assert mine, f"no request from {ua_prefix!r} in the access log: {requests}"
    allowed = {(m, p, s) for m, p, s, _reason in expected}
    bad = [r for r in requests if r.status >= 500]
    bad += [r for r in mine
            if r.status in (404, 405) and (r.method, r.shape, r.status) not in allowed]
    assert not bad, "unexpected answers:\n" + "\n".join(map(repr, bad))
    return mine
