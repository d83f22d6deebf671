"""Ansible (Debian's `ansible` 7.x, ansible-core 2.14) against attachd: the
openstack.cloud collection it bundles (1.10), module
`openstack.cloud.server_volume`, state present and absent.

A playbook on localhost (connection local) attaches a volume to a server (both
made first through attachd's CLI or API) and asserts `changed`; a second run
must not change anything; state absent detaches (changed), and a second
absent changes nothing. After each run the test reads attachd's state over
the API, independently of the client.

Client-side adaptation (the only one): the bundled collection refuses an
openstacksdk newer than 0.98.999 (MAXIMUM_SDK_VERSION in
plugins/module_utils/openstack.py: "Incompatible openstacksdk library found"),
and Debian ships python3-openstacksdk 0.101.0. The test builds an overlay of
the collection in tmp_path, every file a symlink to Debian's copy except
plugins/module_utils/openstack.py, whose one line MAXIMUM_SDK_VERSION is
raised to the installed sdk's version, and points ANSIBLE_COLLECTIONS_PATH at
it (the configured collection path is searched before Python's sys.path).
Nothing else in the collection or the sdk is changed.

Authentication is a clouds.yaml written by compat_util.write_clouds_yaml
(auth_type http_basic, the compute endpoint, block_storage_endpoint_override),
named by OS_CLIENT_CONFIG_FILE; the module is given `cloud: attachd`. For a
server made from an image the module's host variables look the image's name
up in the image service, so that clouds.yaml also gets
image_endpoint_override (attachd's Glance v2 at /image); without it the sdk
reads the compute API's /v2.1/images (as it would from Nova) and fails
(docs/clients.md, Ansible).

Every run goes through a capture: attachd's own access log must show no 5xx
and no 404 or 405 but those in EXPECTED_404_405, each one that Nova answers
the same way.
"""
import importlib.metadata
import json
import os
import shutil
import subprocess

import pytest

import access_log
from compat_util import write_clouds_yaml

COLLECTION = "/usr/lib/python3/dist-packages/ansible_collections/openstack/cloud"
MODULE_UTILS = "plugins/module_utils/openstack.py"
MAX_SDK_LINE = "MAXIMUM_SDK_VERSION = '0.98.999'\n"
UA = "openstacksdk/"


def expected_404_405(flavor_name):
    """(method, path with uuids as {id}, status, why Nova gives it too)."""
    return [
        ("GET", "/v2.1/v2.0/ports", 404,
         "no Neutron: http_basic sends the sdk's network calls to the compute endpoint + /v2.0, "
         "a path Nova has no route for either; the sdk ignores it"),
        ("GET", "/v2.1/v2.0/networks", 404, "the same, for the network list"),
        ("GET", f"/v2.1/flavors/{flavor_name}", 404,
         "the sdk finds the flavor by trying its name as an id first (Nova: 404), "
         "then lists /flavors/detail?is_public=None"),
    ]


PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: attach or detach the volume
      openstack.cloud.server_volume:
        cloud: attachd
        server: "{{ server }}"
        volume: "{{ volume }}"
        state: "{{ state }}"
      register: result
    - name: keep the module's result for the test
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ result_file }}"
    - name: changed, or not, as expected
      ansible.builtin.assert:
        that:
          - result.changed == (expect_changed | bool)
"""


def overlay_collection(root):
    """A copy of Debian's openstack.cloud made of symlinks, with
    module_utils/openstack.py's MAXIMUM_SDK_VERSION raised to the installed
    openstacksdk's version. Returns the ANSIBLE_COLLECTIONS_PATH entry."""
    sdk = importlib.metadata.version("openstacksdk")
    dest = os.path.join(root, "ansible_collections", "openstack", "cloud")
    for dirpath, _dirs, files in os.walk(COLLECTION):
        if "__pycache__" in dirpath:
            continue
        target = os.path.join(dest, os.path.relpath(dirpath, COLLECTION))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(dirpath, name), os.path.join(target, name))
    patched = os.path.join(dest, MODULE_UTILS)
    with open(os.path.join(COLLECTION, MODULE_UTILS)) as f:
        text = f.read()
    assert text.count(MAX_SDK_LINE) == 1, (
        f"{COLLECTION}/{MODULE_UTILS} no longer has {MAX_SDK_LINE!r}: revisit the adaptation")
    os.unlink(patched)
    with open(patched, "w") as f:
        f.write(text.replace(MAX_SDK_LINE, f"MAXIMUM_SDK_VERSION = '{sdk}'\n"))
    return root


class Playbook:
    def __init__(self, tmp_path, clouds_yaml):
        if shutil.which("ansible-playbook") is None or not os.path.isdir(COLLECTION):
            pytest.skip("ansible-playbook or the openstack.cloud collection is missing (Debian package "
                        "ansible; the Makefile's TEST_DEBS installs it)")
        self.dir = tmp_path / "ansible"
        (self.dir / "home").mkdir(parents=True)
        self.playbook = self.dir / "server_volume.yml"
        self.playbook.write_text(PLAYBOOK)
        self.result_file = self.dir / "result.json"
        (self.dir / "ansible.cfg").write_text("")      # an empty configuration, no other one
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir / "home"),
            "LANG": "C.UTF-8",
            "OS_CLIENT_CONFIG_FILE": clouds_yaml,
            "ANSIBLE_COLLECTIONS_PATH": overlay_collection(str(self.dir / "collections")),
            "ANSIBLE_CONFIG": str(self.dir / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(self.dir / "tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        }

    def run(self, server, volume, state, expect_changed):
        if self.result_file.exists():
            self.result_file.unlink()
        extra = {"server": server, "volume": volume, "state": state,
                 "expect_changed": expect_changed, "result_file": str(self.result_file)}
        p = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e", json.dumps(extra),
                            str(self.playbook)],
                           env=self.env, cwd=str(self.dir), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (f"ansible-playbook ({state}, expect changed={expect_changed}) "
                                   f"exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        with open(self.result_file) as f:
            return json.load(f)


def add_image(daemon, tmp_path):
    raw = tmp_path / "cirros.raw"
    raw.write_bytes(b"\0" * 4096)
    return daemon.cli("image", "add", "--name", "cirros", "--file", str(raw),
                      "--image-dir", str(tmp_path / "images")).stdout.strip()


@pytest.mark.parametrize("made_by", ["cli", "api-from-image"])
def test_server_volume_present_absent(cloud, daemon, tmp_path, made_by):
    clouds_yaml = write_clouds_yaml(cloud, tmp_path)
    if made_by == "cli":
        sid = cloud.server(name="ansible-server")
    else:
        image_id = add_image(daemon, tmp_path)
        r = cloud.http().post(f"{cloud.compute}/servers", json={"server": {
            "name": "ansible-server", "imageRef": image_id, "flavorRef": "1"}})
        assert r.status_code == 202, (r.status_code, r.text)
        sid = r.json()["server"]["id"]
        with open(clouds_yaml, "a") as f:
            f.write(f"    image_endpoint_override: {cloud.base}/image\n")
    vid = cloud.volume(name="ansible-volume")
    flavor = cloud.http().get(f"{cloud.compute}/flavors/1").json()["flavor"]
    play = Playbook(tmp_path, clouds_yaml)

    # present: attaches
    result = play.run("ansible-server", "ansible-volume", "present", True)
    assert result["changed"] is True
    assert result["id"] == vid
    assert [a["server_id"] for a in result["attachments"]] == [sid], result["attachments"]
    assert result["openstack"]["id"] == sid
    devices = cloud.attachments(sid)
    assert list(devices) == [vid] and devices[vid], devices
    assert cloud.volume_state(vid) == ("in-use", [sid])

    # present again: nothing to do
    result = play.run("ansible-server", "ansible-volume", "present", False)
    assert result["changed"] is False
    assert [a["server_id"] for a in result["attachments"]] == [sid]
    assert cloud.attachments(sid) == devices
    assert cloud.volume_state(vid) == ("in-use", [sid])

    # absent: detaches
    result = play.run("ansible-server", "ansible-volume", "absent", True)
    assert result["changed"] is True
    assert cloud.attachments(sid) == {}
    assert cloud.volume_state(vid) == ("available", [])

    # absent again: nothing to do
    result = play.run("ansible-server", "ansible-volume", "absent", False)
    assert result["changed"] is False
    assert cloud.volume_state(vid) == ("available", [])

    requests = access_log.captured(daemon)
    mine = access_log.check(requests, UA, expected_404_405(flavor["name"]))
    S = "/v2.1/servers/{id}"
    calls = [(r.method, r.shape, r.status) for r in mine]
    # exactly one attach and one detach were asked, and answered as Nova does
    assert [c for c in calls if c[0] in ("POST", "PUT", "DELETE")] == [
        ("POST", S + "/os-volume_attachments", 200),
        ("DELETE", S + "/os-volume_attachments/{id}", 202),
    ], calls
    # the host variables after each `present`: flavor and (if any) image looked up
    assert calls.count(("GET", "/v2.1/flavors/detail", 200)) == 2, calls
    if made_by != "cli":
        assert ("GET", "/image/v2/images", 200) in calls, calls
