"""Each client's whole user flow, captured by attachd's own access log.

For openstacksdk, python-novaclient, the `openstack` CLI and Apache Libcloud
(the Debian packages, run as their users run them) one test runs the flow a
user of that client runs: discover the API, list flavors and images, find a
flavor and an image by name, create a server, show and list it, create a
volume, attach it, list the attachments, detach it, delete the volume and
delete the server. Every request the client made is then read back from the
daemon's access log (`info access method=... path="..." status=...`, on its
standard error, docs/operations.md) and checked:

* no answer is a 5xx;
* every 404 and 405 is one that Nova (or Cinder, or Glance) itself gives at
  that point of the flow. Those are listed below, each with its reason and,
  where it only holds after an earlier request (a GET of a deleted server),
  the request that must have come first. Anything else, an endpoint attachd
  lacks in particular, fails the test with the request named.

The daemon is the default `none` driver (state only), fresh for each test.
"""
import base64
import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))

import access_log  # noqa: E402
from compat_util import sdk_connection  # noqa: E402
from openstack_cli import OpenstackCLI  # noqa: E402

FLAVOR = "m1.tiny"          # Nova's classic flavor 1, served when no flavor is configured
IMAGE = "cirros"
SERVER = "capture-srv"
VOLUME = "capture-vol"

ID = r"[A-Za-z0-9._~:-]+"

# Per client, the 404s and 405s Nova (or Cinder, or Glance) gives in that
# flow too: (method, path pattern, status, the request that must have been
# answered 2xx before it, as "METHOD path pattern" where \1 is the path
# pattern's group, or None; the reason).
EXPECTED = {
    "sdk": [
        ("GET", r"/v2\.1/flavors/" + re.escape(FLAVOR), 404, None,
         "find_flavor tries the name as an id first; Nova has no flavor with id 'm1.tiny'"),
        ("GET", r"/image/v2/images/" + re.escape(IMAGE), 404, None,
         "find_image tries the name as an id first; Glance has no image with id 'cirros'"),
        ("GET", rf"/v3/{ID}/volumes/({ID})", 404, rf"DELETE /v3/{ID}/volumes/\1",
         "wait_for_delete polls the deleted volume until Cinder answers 404"),
        ("GET", r"/v2\.1/servers/(" + ID + ")", 404, r"DELETE /v2\.1/servers/\1",
         "wait_for_delete polls the deleted server until Nova answers 404"),
    ],
    "novaclient": [
        ("GET", r"/v2\.1/servers/(" + ID + ")", 404, r"DELETE /v2\.1/servers/\1",
         "the user polls the deleted server until Nova answers 404"),
    ],
    "cli": [
        ("GET", r"/v2\.1/flavors/" + re.escape(FLAVOR), 404, None,
         "`--flavor m1.tiny` is tried as an id first; Nova has no flavor with that id"),
        ("GET", r"/image/v2/images/" + re.escape(IMAGE), 404, None,
         "`--image cirros` is tried as an id first; Glance has no image with that id"),
        ("GET", r"/v2\.1/servers/" + re.escape(SERVER), 404, None,
         "a server named by name is tried as an id first; Nova has no server with that id"),
        ("GET", rf"/v3/{ID}/volumes/" + re.escape(VOLUME), 404, None,
         "a volume named by name is tried as an id first; Cinder has no volume with that id"),
        ("GET", r"/v2\.1/servers/(" + ID + ")", 404, r"DELETE /v2\.1/servers/\1",
         "`server delete --wait` polls the deleted server until Nova answers 404"),
    ],
    "libcloud": [],
}


# -- the capture ---------------------------------------------------------------

def capture(daemon):
    """Every request of the daemon's access log, as (time, method, path,
    status, user agent), in the order they were answered (access_log.py:
    the daemon is stopped first, so that every thread's buffered lines are
    written out)."""
    return [(r.time, r.method, r.path, r.status, r.ua) for r in access_log.captured(daemon)]


def check_capture(rows, client):
    """Fail on any 5xx, and on any 404/405 that is not in EXPECTED[client]
    (or that was answered before the request its reason depends on)."""
    assert rows, "the flow made no request at all"
    print(f"{client}: the capture", *(f"{m} {p} {s}" for _, m, p, s, _ in rows), sep="\n  ")
    unexpected = []
    for t, method, path, status, ua in rows:
        if status >= 500:
            unexpected.append(f"{method} {path} -> {status} (a server error)")
            continue
        if status not in (404, 405):
            continue
        for e_method, e_path, e_status, after, _reason in EXPECTED[client]:
            m = re.fullmatch(e_path, path)
            if e_method != method or e_status != status or not m:
                continue
            if after is None:
                break
            before = after.replace(r"\1", re.escape(m.group(1)))
            if any(re.fullmatch(before, f"{pm} {pp}") and 200 <= ps < 300 and pt <= t
                   for pt, pm, pp, ps, _ in rows):
                break
        else:
            unexpected.append(f"{method} {path} -> {status} (ua {ua})")
    assert not unexpected, (
        f"{client}: answers Nova/Cinder/Glance would not give at that point:\n  "
        + "\n  ".join(unexpected)
        + "\nthe whole capture:\n  "
        + "\n  ".join(f"{m} {p} {s}" for _, m, p, s, _ in rows))
    return rows


class Flow:
    """`with Flow(cloud, client) as flow:` runs a client's flow, then checks
    the capture (flow.rows) even when the client gave up on the way: a
    request attachd lacks is named in the failure, before the client's own
    exception (chained)."""

    def __init__(self, cloud, client):
        self.daemon, self.client, self.rows = cloud.d, client, None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        self.rows = capture(self.daemon)
        try:
            check_capture(self.rows, self.client)
        except AssertionError as failed:
            if error is not None:
                raise failed from error
            raise
        return False


def requested(rows, method, pattern):
    return [r for r in rows if r[1] == method and re.fullmatch(pattern, r[2])]


@pytest.fixture
def image(cloud, tmp_path):
    """One image named cirros, made the operator's way (`attachd image add`)."""
    path = tmp_path / "cirros.raw"
    path.write_bytes(os.urandom(4096))
    return cloud.d.cli("image", "add", "--name", IMAGE, "--file", str(path),
                       "--image-dir", str(tmp_path / "images")).stdout.strip()


# -- the test can fail ----------------------------------------------------------

def test_capture_names_a_missing_endpoint(cloud):
    """A request attachd answers 404 outside the expected list fails the check,
    naming the request; so does an expected 404 before what makes it Nova's."""
    assert cloud.http().get(f"{cloud.compute}/os-no-such-extension").status_code == 404
    assert cloud.http().get(f"{cloud.compute}/servers/gone").status_code == 404
    rows = capture(cloud.d)
    with pytest.raises(AssertionError, match=r"GET /v2\.1/os-no-such-extension -> 404"):
        check_capture(rows, "sdk")
    with pytest.raises(AssertionError, match=r"GET /v2\.1/servers/gone -> 404"):
        check_capture(rows, "novaclient")


# -- openstacksdk -----------------------------------------------------------------

def test_sdk_flow(cloud, image):
    with Flow(cloud, "sdk") as flow:
        conn = sdk_connection(cloud, image_endpoint_override=cloud.base + "/image")
        assert conn.compute.get_endpoint_data().max_microversion == (2, 89)    # discovery

        assert FLAVOR in [f.name for f in conn.compute.flavors()]
        assert IMAGE in [i.name for i in conn.image.images()]
        flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
        img = conn.image.find_image(IMAGE, ignore_missing=False)
        assert img.id == image

        server = conn.compute.create_server(name=SERVER, flavorRef=flavor.id,
                                            imageRef=img.id, networks="none")
        server = conn.compute.wait_for_server(server, wait=60)
        assert conn.compute.get_server(server.id).status == "ACTIVE"
        assert server.id in [s.id for s in conn.compute.servers()]
        assert list(conn.compute.server_ips(server)) == []      # no networks
        conn.compute.fetch_server_security_groups(server)

        volume = conn.block_storage.create_volume(size=1, name=VOLUME)
        volume = conn.block_storage.wait_for_status(volume, "available", wait=60)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)
        assert [a.volume_id for a in conn.compute.volume_attachments(server)] == [volume.id]
        conn.block_storage.wait_for_status(volume, "in-use", wait=60)
        conn.compute.delete_volume_attachment(volume.id, server, ignore_missing=False)
        conn.block_storage.wait_for_status(volume, "available", wait=60)
        assert list(conn.compute.volume_attachments(server)) == []

        conn.block_storage.delete_volume(volume, ignore_missing=False)
        conn.block_storage.wait_for_delete(volume, wait=60)
        conn.compute.delete_server(server, ignore_missing=False)
        conn.compute.wait_for_delete(server, wait=60)

    rows = flow.rows
    assert requested(rows, "POST", r"/v2\.1/servers/[^/]+/os-volume_attachments")
    assert requested(rows, "POST", r"/v3/[^/]+/volumes")


# -- python-novaclient ---------------------------------------------------------

def novaclient_session(cloud):
    """http_basic with a fixed catalog: novaclient finds images in the image
    service of the catalog (nova.glance), which http_basic alone would send to
    the compute endpoint (docs/clients.md)."""
    from keystoneauth1.http_basic import HTTPBasicAuth
    from keystoneauth1 import session

    image = cloud.base + "/image"

    class Auth(HTTPBasicAuth):
        def get_endpoint(self, session, service_type=None, **kwargs):
            if service_type == "image":
                return image
            return super().get_endpoint(session, service_type=service_type, **kwargs)

    return session.Session(auth=Auth(endpoint=cloud.compute, username=cloud.user,
                                     password=cloud.password))


def test_novaclient_flow(cloud, image):
    with Flow(cloud, "novaclient") as flow:
        from novaclient import api_versions, client, exceptions

        sess = novaclient_session(cloud)
        version = api_versions.discover_version(client.Client("2.1", session=sess),
                                                api_versions.APIVersion("2.latest"))
        assert version.get_string() == "2.89"
        nova = client.Client(version.get_string(), session=sess)

        assert FLAVOR in [f.name for f in nova.flavors.list()]
        assert IMAGE in [i.name for i in nova.glance.list()]
        flavor = nova.flavors.find(name=FLAVOR)
        img = nova.glance.find_image(IMAGE)
        assert img.id == image

        server = nova.servers.create(SERVER, img, flavor, nics="none")
        deadline = time.monotonic() + 60
        while nova.servers.get(server.id).status != "ACTIVE":
            assert time.monotonic() < deadline, "the server did not become ACTIVE"
            time.sleep(0.2)
        assert server.id in [s.id for s in nova.servers.list()]
        assert nova.servers.ips(server) == {}                   # no networks
        assert list(nova.servers.list_security_group(server)) == []

        # novaclient has no volume create (its os-volumes proxy is gone): the
        # operator makes the volume
        vid = cloud.volume(name=VOLUME)
        nova.volumes.create_server_volume(server.id, vid)
        assert [a.volumeId for a in nova.volumes.get_server_volumes(server.id)] == [vid]
        assert nova.volumes.get_server_volume(server.id, vid).volumeId == vid
        nova.volumes.delete_server_volume(server.id, vid)
        assert nova.volumes.get_server_volumes(server.id) == []
        cloud.d.cli("volume", "del", vid)

        nova.servers.delete(server.id)
        deadline = time.monotonic() + 60
        while True:
            try:
                nova.servers.get(server.id)
            except exceptions.NotFound:
                break
            assert time.monotonic() < deadline, "the server was not deleted"
            time.sleep(0.2)

    rows = flow.rows
    assert requested(rows, "DELETE", r"/v2\.1/servers/[^/]+/os-volume_attachments/[^/]+")


# -- the openstack CLI -----------------------------------------------------------

def test_openstack_cli_flow(cloud, image, tmp_path):
    with Flow(cloud, "cli") as flow:
        home = tmp_path / "home"
        home.mkdir()
        osc = OpenstackCLI(home, cloud.base, cloud.user, cloud.password, cloud.account)
        osc37 = OpenstackCLI(home, cloud.base, cloud.user, cloud.password, cloud.account,
                             compute_version="2.37")

        # no `openstack versions show`: it needs keystoneauth's version data of
        # every service, which the http_basic plugin does not have (it fails
        # before any request); the CLI's sdk half discovers GET /v2.1 itself
        assert FLAVOR in [f["Name"] for f in osc("flavor", "list")]
        assert IMAGE in [i["Name"] for i in osc("image", "list")]
        assert osc("flavor", "show", FLAVOR)["name"] == FLAVOR
        assert osc("image", "show", IMAGE)["id"] == image

        server = osc37("server", "create", "--flavor", FLAVOR, "--image", IMAGE, "--nic", "none",
                       "--wait", SERVER)
        assert server["status"] == "ACTIVE"
        assert osc("server", "show", SERVER)["id"] == server["id"]
        assert server["id"] in [s["ID"] for s in osc("server", "list")]

        volume = osc("volume", "create", "--size", "1", VOLUME)
        osc("server", "add", "volume", SERVER, VOLUME, as_json=False)
        listed = osc("server", "volume", "list", SERVER)
        assert [a["Volume ID"] for a in listed] == [volume["id"]]
        osc("server", "remove", "volume", SERVER, VOLUME, as_json=False)
        assert osc("server", "volume", "list", SERVER) == []
        osc("volume", "delete", VOLUME, as_json=False)
        osc("server", "delete", "--wait", SERVER, as_json=False)

    rows = flow.rows
    assert requested(rows, "GET", r"/v2\.1/?")
    assert requested(rows, "DELETE", r"/v2\.1/servers/[^/]+")


# -- Apache Libcloud -----------------------------------------------------------

def libcloud_driver(cloud):
    """libcloud's OpenStack driver without Keystone (docs/clients.md): its own
    ex_force_auth_token / ex_force_*_url options skip the token request and
    fix the catalog; the connections send HTTP Basic instead of the token."""
    from libcloud.compute.drivers import openstack as lc

    basic = "Basic " + base64.b64encode(f"{cloud.user}:{cloud.password}".encode()).decode()

    class Basic:
        def add_default_headers(self, headers):
            headers = super().add_default_headers(headers)
            headers.pop("X-Auth-Token", None)
            headers["Authorization"] = basic
            return headers

    def basic_cls(cls):
        return type("Basic" + cls.__name__, (Basic, cls), {})

    class Driver(lc.OpenStack_2_NodeDriver):
        connectionCls = basic_cls(lc.OpenStack_2_Connection)
        image_connectionCls = basic_cls(lc.OpenStack_2_ImageConnection)
        network_connectionCls = basic_cls(lc.OpenStack_2_NetworkConnection)
        volumev2_connectionCls = basic_cls(lc.OpenStack_2_VolumeV2Connection)
        volumev3_connectionCls = basic_cls(lc.OpenStack_2_VolumeV3Connection)

    return Driver(cloud.user, cloud.password,
                  ex_force_auth_url=cloud.base,
                  ex_tenant_name=cloud.account,
                  ex_force_auth_token="http-basic",
                  ex_force_base_url=f"{cloud.base}/v2.1/{cloud.account}",
                  ex_force_image_url=cloud.base + "/image",
                  ex_force_volume_url=cloud.block_storage,
                  ex_force_network_url=cloud.base + "/no-network")


def test_libcloud_flow(cloud, image):
    with Flow(cloud, "libcloud") as flow:
        from libcloud.compute.types import NodeState, StorageVolumeState

        driver = libcloud_driver(cloud)
        sizes = driver.list_sizes()
        images = driver.list_images()
        size = [s for s in sizes if s.name == FLAVOR][0]
        img = [i for i in images if i.name == IMAGE][0]
        assert img.id == image

        node = driver.create_node(name=SERVER, size=size, image=img)
        # not wait_until_running: it waits for an IP address, and attachd's
        # servers have none
        deadline = time.monotonic() + 60
        while driver.ex_get_node_details(node.id).state != NodeState.RUNNING:
            assert time.monotonic() < deadline, "the node did not become RUNNING"
            time.sleep(0.2)
        assert node.id in [n.id for n in driver.list_nodes()]
        assert driver.ex_get_node_security_groups(node) == []

        volume = driver.create_volume(1, VOLUME)
        assert driver.ex_get_volume(volume.id).state == StorageVolumeState.AVAILABLE
        assert driver.attach_volume(node, volume)
        attached = driver.ex_get_volume(volume.id)
        assert [a.get("server_id") or a.get("serverId")
                for a in attached.extra["attachments"]] == [node.id]
        assert volume.id in [v.id for v in driver.list_volumes()]
        assert driver.detach_volume(attached, ex_node=node)
        assert driver.ex_get_volume(volume.id).extra["attachments"] == []
        assert driver.destroy_volume(volume)
        assert driver.destroy_node(node)

    rows = flow.rows
    assert requested(rows, "POST", r"/v3/[^/]+/volumes")
    assert requested(rows, "DELETE", r"/v2\.1/[^/]+/servers/[^/]+/os-volume_attachments/[^/]+")
