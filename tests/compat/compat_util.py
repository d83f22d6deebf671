"""Shared helpers for the client compatibility suite (tests/compat).

Every client is the stock Debian package, imported or run exactly as a user
would, and authenticated with keystoneauth1's `http_basic` plugin against the
real attachd (tests/support/attachd.py). Nothing here patches a client, a
schema or an expectation: the helpers only build configuration, and read the
daemon's state over plain HTTP to check what a client call really did.

docs/client-requirements.md records what each client sends and needs back.
"""
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# What clients send when they create a server. attachd keeps no images, so
# any well-formed image reference will do; flavor 1 is Nova's m1.tiny (the
# classic set attachd serves when the configuration names no flavors).
IMAGE_REF = "70a599e0-31e7-49b7-b260-868f441e862b"
FLAVOR_REF = "1"

MAX_MICROVERSION = "2.89"

# The 401 body of Hostway's DetachVolumeFromServer page
# (docs/api.md, decision D6).
UNAUTHORIZED_BODY = (
    b"401 Unauthorized\n"
    b"This server could not verify that you are authorized to\n"
    b"access the document you requested.  Either you supplied the\n"
    b"wrong credentials (e.g., bad password), or your browser\n"
    b"does not understand how to supply the credentials required.\n"
)


def mv_tuple(v):
    """'2.79' -> (2, 79); None (no microversion sent) -> (2, 1)."""
    if v is None:
        return (2, 1)
    major, minor = v.split(".")
    return (int(major), int(minor))


def needs_networks(v):
    """Nova requires `networks` in a server create from 2.37 on, and rejects
    the string forms before it."""
    return mv_tuple(v) >= (2, 37)


Image = collections.namedtuple("Image", "id name size md5")


class Cloud:
    """One account on a running attachd, with a member and an admin user."""

    def __init__(self, daemon):
        self.d = daemon
        self.base = daemon.base
        self.account = daemon.add_account("compat")
        self.user, self.password = daemon.add_user(self.account)
        self.admin_user, self.admin_password = daemon.add_user(self.account, role="admin")
        self.compute = self.base + "/v2.1"
        self.block_storage = f"{self.base}/v3/{self.account}"

    # -- fixtures made with the admin CLI --------------------------------
    def server(self, name=None, server_id=None):
        return self.d.add_server(self.account, name or "srv-" + uuid.uuid4().hex[:6], server_id)

    def volume(self, name=None, size=1, volume_id=None):
        return self.d.add_volume(self.account, size=size, name=name or "vol-" + uuid.uuid4().hex[:6],
                                 volume_id=volume_id)

    def image(self, name, size=4096, image_id=None):
        """`attachd image add` of a raw file of SIZE random bytes (images are
        the operator's, seen by every account: docs/api.md, decision D11).
        Returns an Image with the id the CLI printed, the size and the md5."""
        path = os.path.join(self.d.dir, "image-" + uuid.uuid4().hex[:8] + ".raw")
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        args = ["image", "add", "--name", name, "--file", path,
                "--image-dir", os.path.join(self.d.dir, "images")]
        if image_id:
            args += ["--id", image_id]
        made = self.d.cli(*args).stdout.strip()
        assert made and (image_id is None or made == image_id), made
        return Image(made, name, size, hashlib.md5(data).hexdigest())

    # -- the daemon's state, read over plain HTTP (independent of the client
    #    under test) -------------------------------------------------------
    def http(self, admin=False, microversion=None):
        if admin:
            return self.d.session(self.admin_user, self.admin_password, microversion)
        return self.d.session(self.user, self.password, microversion)

    def volume_state(self, vid):
        """The Nova os-volumes view (2.1) of one volume: its status and the
        servers it is attached to."""
        r = self.http().get(f"{self.compute}/os-volumes/{vid}")
        assert r.status_code == 200, (r.status_code, r.text)
        v = r.json()["volume"]
        servers = sorted(a["serverId"] for a in v["attachments"] if a)
        return v["status"], servers

    def attachments(self, sid):
        """{volumeId: device} for a server, read at microversion 2.1."""
        r = self.http().get(f"{self.compute}/servers/{sid}/os-volume_attachments")
        assert r.status_code == 200, (r.status_code, r.text)
        return {a["volumeId"]: a.get("device") for a in r.json()["volumeAttachments"]}

    def server_exists(self, sid):
        r = self.http().get(f"{self.compute}/servers/{sid}")
        assert r.status_code in (200, 404), (r.status_code, r.text)
        return r.status_code == 200

    def server_state(self, sid):
        r = self.http(microversion="2.9").get(f"{self.compute}/servers/{sid}")
        assert r.status_code == 200, (r.status_code, r.text)
        s = r.json()["server"]
        return s["status"], s["locked"]


# -- client construction, the way each client's documentation shows it -----

def keystone_session(user, password, endpoint):
    from keystoneauth1 import session
    from keystoneauth1.http_basic import HTTPBasicAuth
    return session.Session(auth=HTTPBasicAuth(endpoint=endpoint, username=user, password=password))


def sdk_connection(cloud, microversion=None, admin=False, **extra):
    import openstack
    kwargs = dict(extra)
    if microversion is not None:
        kwargs["compute_api_version"] = microversion
    user, password = (cloud.admin_user, cloud.admin_password) if admin else (cloud.user, cloud.password)
    return openstack.connect(
        auth_type="http_basic",
        auth={"username": user, "password": password, "endpoint": cloud.compute},
        block_storage_endpoint_override=cloud.block_storage,
        load_yaml_config=False,
        load_envvars=False,
        **kwargs,
    )


def nova_client(cloud, version, admin=False):
    from novaclient import client
    user, password = (cloud.admin_user, cloud.admin_password) if admin else (cloud.user, cloud.password)
    return client.Client(version, session=keystone_session(user, password, cloud.compute))


# -- the openstack CLI --------------------------------------------------------

def write_clouds_yaml(cloud, directory):
    """A clouds.yaml that names attachd alone (docs/clients.md)."""
    path = os.path.join(str(directory), "clouds.yaml")
    with open(path, "w") as f:
        f.write(
            "clouds:\n"
            "  attachd:\n"
            "    auth_type: http_basic\n"
            "    auth:\n"
            f"      username: {cloud.user}\n"
            f"      password: {cloud.password}\n"
            f"      endpoint: {cloud.compute}\n"
            f"    block_storage_endpoint_override: {cloud.block_storage}\n"
        )
    return path


class OpenStackCLI:
    """Runs `/usr/bin/python3 -m openstackclient.shell` (what /usr/bin/openstack
    runs) with a clean environment: only this clouds.yaml, an empty HOME."""

    def __init__(self, clouds_yaml, home):
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "OS_CLIENT_CONFIG_FILE": clouds_yaml,
            "OS_CLOUD": "attachd",
        }

    def run(self, *args, check=True):
        cmd = [sys.executable, "-m", "openstackclient.shell", *args]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if check and p.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def json(self, *args):
        p = self.run(*args, "-f", "json")
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"openstack {' '.join(args)}: not JSON: {p.stdout!r} {p.stderr!r}")

