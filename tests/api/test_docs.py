"""docs/api.md stays true (issue 3 item 5).

docs/api.md is executable: every ```console block in it is run, in document
order, against a fresh attachd, and what the block shows after each command
must be exactly what the command prints now:

  * `$ attachd ...` lines run the CLI on the daemon's database (`echo X |`
    feeds standard input); the lines after them are its output; `$ truncate
    ...` makes a file (an image's) as the shell does; both run in the
    daemon's folder;
  * `$ curl ...` lines (continued with a trailing backslash) run the real
    curl against the daemon (the documented 127.0.0.1:8774 is replaced by
    the daemon's address); after them come the status line, the headers
    worth reading (Content-Type, Location, Allow, WWW-Authenticate,
    Retry-After, OpenStack-API-Version, in that order), a blank line and the
    body (JSON indented by 2, text as is). Generated values are shown as
    placeholders: `<uuid>` for a UUID4, `<time>` for a timestamp,
    `<password>` for adminPass, and `$NAME` for a value captured by an
    `<!-- capture NAME = json.path -->` comment before the block (later
    commands may then use $NAME).

The structure is checked too: each `### \\`METHOD /path\\`` section under
"## Hostway dialect", "## Nova dialect" or "## Block storage (Cinder v3, read-only)"
(whose paths are written out in full) documents one endpoint, its
examples use that method and path (on any prefix of the dialect: docs/api.md, decision D1), and
its status table lists exactly the codes that its examples show plus the
codes whose row names a test (`test_file.py::test_name`, under tests/api,
tests/libvirt or tests/compat) that exists. The
sections together are exactly the endpoints attachd serves (ENDPOINTS).

To rewrite the outputs after a deliberate change:
    /usr/bin/python3 tests/api/test_docs.py --write
then read the diff: the prose and the tables are not rewritten.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(ROOT, "docs", "api.md")
sys.path[:0] = [HERE, os.path.join(ROOT, "tests", "support")]

from attachd import Attachd, binary  # noqa: E402

DOC_HOST = "127.0.0.1:8774"
SHOWN_HEADERS = ["Content-Type", "Location", "Allow", "WWW-Authenticate", "Retry-After",
                 "OpenStack-API-Version"]
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?$")

# (dialect, method, path template without prefix): every endpoint (docs/api.md's index).
ENDPOINTS = {("discovery", "GET", "/"), ("discovery", "GET", "/v2.1")}
for _d in ("hostway", "nova"):
    vols = "/volumes" if _d == "hostway" else "/os-volumes"
    ENDPOINTS |= {
        (_d, "GET", "/servers"), (_d, "POST", "/servers"), (_d, "GET", "/servers/detail"),
        (_d, "GET", "/servers/{server_id}"), (_d, "DELETE", "/servers/{server_id}"),
        (_d, "POST", "/servers/{server_id}/action"),
        (_d, "GET", "/servers/{server_id}/ips"),
        (_d, "GET", "/servers/{server_id}/ips/{network_label}"),
        (_d, "GET", "/servers/{server_id}/os-security-groups"),
        (_d, "GET", "/servers/{server_id}/os-volume_attachments"),
        (_d, "POST", "/servers/{server_id}/os-volume_attachments"),
        (_d, "GET", "/servers/{server_id}/os-volume_attachments/{volume_id}"),
        (_d, "PUT", "/servers/{server_id}/os-volume_attachments/{volume_id}"),
        (_d, "DELETE", "/servers/{server_id}/os-volume_attachments/{volume_id}"),
        (_d, "GET", vols), (_d, "POST", vols), (_d, "GET", vols + "/detail"),
        (_d, "GET", vols + "/{volume_id}"), (_d, "DELETE", vols + "/{volume_id}"),
        (_d, "GET", "/limits"),
        (_d, "GET", "/flavors"), (_d, "GET", "/flavors/detail"),
        (_d, "GET", "/flavors/{flavor_id}"),
        (_d, "GET", "/flavors/{flavor_id}/os-extra_specs"),
        (_d, "GET", "/flavors/{flavor_id}/os-extra_specs/{key}"),
        (_d, "GET", "/images"), (_d, "GET", "/images/detail"), (_d, "GET", "/images/{image_id}"),
    }
# the read-only block-storage API for the openstack CLI (issue 4)
ENDPOINTS |= {("cinder", "GET", "/v3"), ("cinder", "GET", "/v3/{project_id}/volumes"),
              ("cinder", "GET", "/v3/{project_id}/volumes/detail"),
              ("cinder", "GET", "/v3/{project_id}/volumes/{volume_id}"),
              ("cinder", "POST", "/v3/{project_id}/volumes"),
              ("cinder", "PUT", "/v3/{project_id}/volumes/{volume_id}"),
              ("cinder", "DELETE", "/v3/{project_id}/volumes/{volume_id}"),
              ("cinder", "GET", "/v3/{project_id}/limits")}
# the read-only image service for the openstack CLI and openstacksdk (issue 9)
ENDPOINTS |= {("glance", "GET", "/image"), ("glance", "GET", "/image/v2/images"),
              ("glance", "GET", "/image/v2/images/{image_id}")}

PREFIXES = {"hostway": [r"", r"/accounts/[^/]+/flexcloud"],
            "nova": [r"/v2\.1", r"/v2\.1/[^/]+"],
            "discovery": [r""], "cinder": [r""], "glance": [r""]}


# -- reading the document ----------------------------------------------------------

def dialect_of_title(title):
    """The dialect of a "## " section, from its lowercased title."""
    for word in ("hostway", "nova", "discovery", "cinder", "glance"):
        if word in title:
            return word
    return None


class Block:
    def __init__(self, start, end, lines, section, captures):
        self.start, self.end, self.lines = start, end, lines     # lines inside the fence
        self.section, self.captures = section, captures          # (dialect, method, path)


def parse(text):
    """The console blocks, each with its section and capture directives."""
    lines = text.split("\n")
    blocks, dialect, section, captures = [], None, None, []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            title = line[3:].lower()
            dialect = dialect_of_title(title)
            section = None
        m = re.match(r"^### `(GET|POST|PUT|DELETE) ([^`]+)`", line)
        if m:
            section = (dialect, m.group(1), m.group(2))
        m = re.match(r"^<!-- capture (\w+) = ([\w.\[\]]+) -->$", line)
        if m:
            captures.append((m.group(1), m.group(2)))
        if line.strip() == "```console":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            blocks.append(Block(i + 1, j, lines[i + 1:j], section, captures))
            captures = []
            i = j
        i += 1
    return lines, blocks


def commands(block_lines):
    """[(command text, output lines)] of one block."""
    out, cmd, i = [], None, 0
    while i < len(block_lines):
        line = block_lines[i]
        if line.startswith("$ "):
            text = line[2:]
            while text.endswith("\\"):
                i += 1
                text = text[:-1].rstrip() + " " + block_lines[i].strip()
            cmd = (text, [])
            out.append(cmd)
        elif cmd is not None:
            cmd[1].append(line)
        i += 1
    return out


def status_table(text, heading_line):
    """{code: row text} of the table in the section that starts at HEADING_LINE."""
    lines = text.split("\n")
    codes = {}
    for line in lines[heading_line + 1:]:
        if line.startswith("## ") or line.startswith("### "):
            break
        m = re.match(r"^\|\s*(\d{3})\s*\|", line)
        if m:
            codes[int(m.group(1))] = line
    return codes


# -- running -----------------------------------------------------------------------

class Runner:
    def __init__(self, daemon):
        self.d = daemon
        self.host = f"127.0.0.1:{daemon.port}"
        self.vars = {}

    def subst(self, text):
        for k, v in sorted(self.vars.items(), key=lambda kv: -len(kv[0])):
            text = text.replace("$" + k, v)
        return text.replace(DOC_HOST, self.host)

    def run(self, cmd, captures):
        argv = shlex.split(self.subst(cmd))
        stdin = None
        if argv[0] == "echo" and "|" in argv:
            bar = argv.index("|")
            stdin = " ".join(argv[1:bar]) + "\n"
            argv = argv[bar + 1:]
        if argv[0] in ("attachd", "truncate"):
            # in the daemon's folder: the files the examples make are there
            if argv[0] == "attachd":
                argv = [binary(), *argv[1:], "--db", self.d.db]
            p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                               cwd=self.d.dir)
            assert p.returncode == 0, (cmd, p.stderr)
            return p.stdout.rstrip("\n").split("\n") if p.stdout.strip() else []
        assert argv[0] == "curl", cmd
        p = subprocess.run(argv, capture_output=True, timeout=60)
        assert p.returncode == 0, (cmd, p.stderr)
        return self.render(p.stdout, captures)

    def render(self, raw, captures):
        head, _, body = raw.partition(b"\r\n\r\n")
        head_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for h in head_lines[1:]:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        ctype = headers.get("content-type", "")
        data = None
        if ctype.startswith("application/json") and body:
            data = json.loads(body, object_pairs_hook=dict)
            for name, path in captures:
                value = data
                for part in re.findall(r"\w+|\[\d+\]", path):
                    value = value[int(part[1:-1])] if part.startswith("[") else value[part]
                self.vars[name] = value
        out = [head_lines[0]]
        for name in SHOWN_HEADERS:
            if name.lower() in headers:
                out.append(f"{name}: {self.scrub(headers[name.lower()])}")
        if body:
            out.append("")
            if data is not None:
                text = json.dumps(self.placeholders(data), indent=2, ensure_ascii=False)
            else:
                text = body.decode("utf-8").rstrip("\n")
            out.extend(text.split("\n"))
        return out

    def scrub(self, s):
        s = s.replace(self.host, DOC_HOST)
        for k, v in sorted(self.vars.items(), key=lambda kv: -len(kv[1])):
            if len(v) >= 8:
                s = s.replace(v, "$" + k)
        return UUID4.sub("<uuid>", s)

    def placeholders(self, v, key=None):
        if isinstance(v, dict):
            return {k: self.placeholders(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.placeholders(x) for x in v]
        if isinstance(v, str):
            if key == "adminPass":
                return "<password>"
            if TIME.match(v):
                return "<time>"
            return self.scrub(v)
        return v


def run_doc(text):
    """Run every block; return (lines, blocks, [(block, rendered lines)])."""
    lines, blocks = parse(text)
    with tempfile.TemporaryDirectory() as tmp:
        d = Attachd(tmp)
        d.start()
        try:
            r = Runner(d)
            results = []
            for b in blocks:
                rendered = []
                for cmd, _ in commands(b.lines):
                    rendered.append((cmd, r.run(cmd, b.captures)))
                results.append((b, rendered))
        finally:
            rc = d.stop()
        assert rc == 0, d.read_log()
    return lines, blocks, results


def rebuild(block, rendered):
    """The block's lines with each command's output replaced by RENDERED."""
    out, i, k = [], 0, 0
    bl = block.lines
    while i < len(bl):
        if bl[i].startswith("$ "):
            out.append(bl[i])
            while bl[i].endswith("\\"):
                i += 1
                out.append(bl[i])
            out.extend(rendered[k][1])
            k += 1
            i += 1
            while i < len(bl) and not bl[i].startswith("$ "):
                i += 1
        else:
            out.append(bl[i])
            i += 1
    return out


def section_lines(text):
    """{(dialect, method, path): heading line index}."""
    found, dialect = {}, None
    for n, line in enumerate(text.split("\n")):
        if line.startswith("## "):
            title = line[3:].lower()
            dialect = dialect_of_title(title)
        m = re.match(r"^### `(GET|POST|PUT|DELETE) ([^`]+)`", line)
        if m:
            key = (dialect, m.group(1), m.group(2))
            assert key not in found, f"two sections for {key}"
            found[key] = n
    return found


def path_matches(section, method, url):
    dialect, smethod, template = section
    if method != smethod:
        return False
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0] or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    if template == "/":
        return path == "/"
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
    return any(re.fullmatch(p + pattern, path) for p in PREFIXES[dialect])


def curl_method_url(cmd):
    argv = shlex.split(cmd)
    method = "GET"
    for i, a in enumerate(argv):
        if a == "-X":
            method = argv[i + 1]
    if method == "GET" and any(a in ("-d", "--data") for a in argv):
        method = "POST"
    url = next(a for a in argv if a.startswith("http"))
    return method, url


# -- the tests ----------------------------------------------------------------------

def test_docs_examples_are_what_the_daemon_answers():
    with open(DOC) as f:
        text = f.read()
    _, _, results = run_doc(text)
    diffs = []
    for block, rendered in results:
        want = rebuild(block, rendered)
        if want != block.lines:
            import difflib
            diffs.append(f"docs/api.md line {block.start + 1}:\n" + "\n".join(
                difflib.unified_diff(block.lines, want, "documented", "answered", lineterm="")))
    assert not diffs, ("docs/api.md no longer matches the daemon; if the change is meant, "
                       "run `/usr/bin/python3 tests/api/test_docs.py --write` and review:\n"
                       + "\n\n".join(diffs[:8]))


def test_docs_cover_every_endpoint_and_status():
    with open(DOC) as f:
        text = f.read()
    sections = section_lines(text)
    assert set(sections) == ENDPOINTS, (
        f"missing: {sorted(ENDPOINTS - set(sections))}; "
        f"unknown: {sorted(set(sections) - ENDPOINTS)}")
    _, blocks = parse(text)
    shown = {k: set() for k in sections}
    for b in blocks:
        for cmd, out in commands(b.lines):
            if not cmd.startswith("curl"):
                continue
            assert b.section is not None, f"curl example outside an endpoint section: {cmd}"
            method, url = curl_method_url(cmd)
            assert path_matches(b.section, method, url), \
                f"{method} {url} is not an example of {b.section}"
            m = re.match(r"^HTTP/1\.1 (\d{3}) ", out[0] if out else "")
            assert m, f"no status line after {cmd}"
            shown[b.section].add(int(m.group(1)))
    tests_text = {}
    for folder in (HERE, os.path.join(ROOT, "tests", "libvirt"), os.path.join(ROOT, "tests", "compat")):
        for name in os.listdir(folder):
            if name.startswith("test_") and name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    tests_text[name] = f.read()
    problems = []
    for key, line in sections.items():
        table = status_table(text, line)
        assert table, f"no status table for {key}"
        cited = set()
        for code, row in table.items():
            for fname, tname in re.findall(r"(test_\w+\.py)::(test_\w+)", row):
                assert f"def {tname}(" in tests_text.get(fname, ""), \
                    f"{key} {code} cites {fname}::{tname}, which does not exist"
                cited.add(code)
        if set(table) != shown[key] | cited:
            problems.append(f"{key}: table {sorted(table)}, examples {sorted(shown[key])}, "
                            f"cited tests {sorted(cited)}")
        if not shown[key]:
            problems.append(f"{key}: no example")
    assert not problems, "\n".join(problems)


def main():
    if sys.argv[1:] != ["--write"]:
        print(__doc__)
        return 2
    with open(DOC) as f:
        text = f.read()
    lines, _, results = run_doc(text)
    for block, rendered in reversed(results):
        lines[block.start:block.end] = rebuild(block, rendered)
    with open(DOC, "w") as f:
        f.write("\n".join(lines))
    print(f"rewrote {len(results)} blocks of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
