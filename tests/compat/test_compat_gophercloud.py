"""gophercloud (Go; Debian's golang-github-gophercloud-gophercloud-dev 0.12.0,
built with golang-go) against attachd: a whole client flow.

tests/compat/gophercloud/flow.go lists the flavors (public, then all:
`?is_public=None`), gets one, lists the images through the compute API's
image proxy, creates a server (servers.Create), gets it, attaches a volume
(extensions/volumeattach Create), lists and gets the attachment, detaches it
(Delete) and deletes the server. It is built offline in GOPATH mode
(GOPATH=/usr/share/gocode, GO111MODULE=off, GOPROXY=off), where Debian puts
the module's source.

Client-side adaptation: none in gophercloud itself. attachd speaks HTTP Basic,
not Keystone, so the program builds its compute ServiceClient by hand: a
ProviderClient whose EndpointLocator returns the endpoint, then
openstack.NewComputeV2, then `MoreHeaders["Authorization"] = "Basic ..."`
(docs/clients.md, "gophercloud (Go)").

Every run goes through a capture: attachd's own access log, read after the
daemon stopped, must hold exactly the requests the flow makes (in any order:
each HTTP thread writes its own lines), none answered 5xx, and no 404 or 405
but those listed in EXPECTED_404_405 (which Nova gives as well).
"""
import json
import os
import shutil
import subprocess

import pytest

import access_log

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"
UA = "gophercloud/"

# 404s and 405s this flow may get, each one that Nova gives too, by
# microversion (None: no microversion header, i.e. 2.1).
EXPECTED_404_405 = {
    None: [],
    "2.79": [
        ("GET", "/v2.1/images/detail", 404,
         "Nova removed the image proxy at 2.36; the flow then uses the image it was given"),
    ],
}


@pytest.fixture(scope="module")
def flow_binary(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not installed (Debian package golang-go; the Makefile's TEST_DEBS "
                    "installs it with golang-github-gophercloud-gophercloud-dev): "
                    "the gophercloud flow cannot be built")
    tmp = tmp_path_factory.mktemp("gophercloud")
    out = str(tmp / "flow")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "GOPATH": GOPATH,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(tmp / "gocache"),
        "CGO_ENABLED": "0",
    }
    p = subprocess.run([go, "build", "-o", out, os.path.join(HERE, "gophercloud", "flow.go")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (
        f"go build of tests/compat/gophercloud/flow.go failed (is "
        f"golang-github-gophercloud-gophercloud-dev installed under {GOPATH}?)\n"
        f"{p.stdout}\n{p.stderr}")
    return out


def add_image(daemon, tmp_path, name="cirros"):
    raw = tmp_path / (name + ".raw")
    raw.write_bytes(b"\0" * 4096)
    return daemon.cli("image", "add", "--name", name, "--file", str(raw),
                      "--image-dir", str(tmp_path / "images")).stdout.strip()


class Flow:
    """flow.go running with -pause: it stops after the attach until told."""

    def __init__(self, binary, cloud, vid, image_id, microversion):
        args = [binary, "-endpoint", cloud.compute, "-user", cloud.user, "-password", cloud.password,
                "-volume", vid, "-device", "/dev/vdb", "-pause"]
        if microversion:
            args += ["-microversion", microversion, "-networks", "none", "-image", image_id]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.steps = {}

    def until(self, step):
        while step not in self.steps:
            line = self.p.stdout.readline()
            if not line:
                self.p.wait(timeout=30)
                raise AssertionError(f"flow ended (exit {self.p.returncode}) before {step!r}: "
                                     f"{self.p.stderr.read()}\nsteps so far: {self.steps}")
            event = json.loads(line)
            self.steps[event.pop("step")] = event
        return self.steps[step]

    def finish(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        out, err = self.p.communicate(timeout=60)
        for line in out.splitlines():
            event = json.loads(line)
            self.steps[event.pop("step")] = event
        assert self.p.returncode == 0, f"flow exited {self.p.returncode}: {err}\nsteps: {self.steps}"
        return self.steps


@pytest.mark.parametrize("microversion", [None, "2.79"], ids=lambda v: v or "no-microversion")
def test_gophercloud_whole_flow(flow_binary, cloud, daemon, tmp_path, microversion):
    image_id = add_image(daemon, tmp_path)
    vid = cloud.volume(name="go-volume")
    api = cloud.http()
    flavors = api.get(f"{cloud.compute}/flavors/detail").json()["flavors"]
    all_flavors = api.get(f"{cloud.compute}/flavors/detail", params={"is_public": "None"}).json()["flavors"]

    flow = Flow(flow_binary, cloud, vid, image_id, microversion)
    try:
        attached = flow.until("attached")
        s = flow.steps
        # what gophercloud read is what attachd holds
        assert s["flavors"] == {"ids": [f["id"] for f in flavors],
                                "all_ids": [f["id"] for f in all_flavors]}
        first = flavors[0]
        assert s["flavor"] == {"id": first["id"], "name": first["name"], "ram": first["ram"],
                               "vcpus": first["vcpus"], "disk": first["disk"]}
        if microversion is None:
            assert s["images"] == {"ids": [image_id]}
        else:
            assert s["images"] == {"status": 404}
        sid = s["created"]["id"]
        assert s["server"]["id"] == sid and s["server"]["name"] == "gophercloud-flow"
        assert s["server"]["status"] == "ACTIVE"
        assert s["server"]["tenant_id"] == cloud.account
        assert s["server"]["image"]["id"] == image_id
        if microversion is None:
            assert s["server"]["flavor"]["id"] == first["id"]
        else:   # 2.47+: the flavor is embedded
            assert s["server"]["flavor"]["original_name"] == first["name"]
        assert attached == {"id": vid, "device": "/dev/vdb", "volume_id": vid, "server_id": sid}
        # attachd's state between the attach and the detach
        assert cloud.attachments(sid) == {vid: "/dev/vdb"}
        assert cloud.volume_state(vid) == ("in-use", [sid])
    except BaseException:
        flow.p.kill()
        flow.p.communicate()
        raise
    steps = flow.finish()
    assert steps["listed"] == {"attachments": [attached]}
    assert steps["got"] == attached
    assert steps["deleted"] == {"id": sid}
    assert cloud.volume_state(vid) == ("available", [])
    assert not cloud.server_exists(sid)

    requests = access_log.captured(daemon)
    mine = access_log.check(requests, UA, EXPECTED_404_405[microversion])
    S = "/v2.1/servers/{id}"
    # (each HTTP thread writes its own access lines: compared as a multiset)
    assert sorted((r.method, r.shape, r.query, r.status) for r in mine) == sorted([
        ("GET", "/v2.1/flavors/detail", "", 200),
        ("GET", "/v2.1/flavors/detail", "is_public=None", 200),
        ("GET", f"/v2.1/flavors/{first['id']}", "", 200),
        ("GET", "/v2.1/images/detail", "", 200 if microversion is None else 404),
        ("POST", "/v2.1/servers", "", 202),
        ("GET", S, "", 200),
        ("POST", S + "/os-volume_attachments", "", 200),
        ("GET", S + "/os-volume_attachments", "", 200),
        ("GET", S + "/os-volume_attachments/{id}", "", 200),
        ("DELETE", S + "/os-volume_attachments/{id}", "", 202),
        ("DELETE", S, "", 204),
    ]), "\n".join(map(repr, mine))


def test_gophercloud_wrong_password_is_401(flow_binary, cloud, daemon):
    """The Basic header really is what authenticates: a wrong password makes
    the first call fail with attachd's 401, and nothing else is asked."""
    vid = cloud.volume()
    p = subprocess.run([flow_binary, "-endpoint", cloud.compute, "-user", cloud.user,
                        "-password", cloud.password + "x", "-volume", vid],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.startswith("flavors.ListDetail:"), p.stderr
    assert "Authentication failed" in p.stderr, p.stderr   # gophercloud's ErrDefault401
    requests = access_log.captured(daemon)
    mine = [r for r in requests if r.ua.startswith(UA)]
    assert [(r.method, r.path, r.status) for r in mine] == [("GET", "/v2.1/flavors/detail", 401)]
