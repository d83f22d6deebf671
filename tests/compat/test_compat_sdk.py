"""openstacksdk 0.101 (python3-openstacksdk) against attachd, issue 4.

`openstack.connect(auth_type='http_basic', ...)` with the compute endpoint
http://HOST:PORT/v2.1. Every flow runs once with the microversion the sdk
negotiates from the discovery document (`None` below) and once with
`compute_api_version` pinned to 2.1, 2.79 and 2.89.

Not covered, on purpose: `update_volume_attachment` (0.101 drops its
attributes and sends an empty body, so it cannot work against any server;
updates are covered by novaclient and tempest).
"""
import pytest

from compat_util import FLAVOR_REF, IMAGE_REF, MAX_MICROVERSION, needs_networks, sdk_connection

# None: let the sdk negotiate (VolumeAttachment caps at 2.89, Server at 2.73).
VERSIONS = [None, "2.1", "2.79", "2.89"]


def effective(requested, resource_max):
    """The microversion the sdk sends for a resource."""
    if requested is not None:
        return requested
    cap = tuple(map(int, resource_max.split(".")))
    server = tuple(map(int, MAX_MICROVERSION.split(".")))
    return "%d.%d" % min(cap, server)


def test_negotiation_reads_the_discovery_document(cloud):
    """The sdk takes min/max from GET /v2.1. If the document is incomplete it
    silently falls back to sending no microversion at all, and every other
    test here would see 2.1 bodies."""
    from openstack import utils
    conn = sdk_connection(cloud)
    data = conn.compute.get_endpoint_data()
    assert data is not None, "keystoneauth found no version document at /v2.1"
    assert data.min_microversion == (2, 1)
    assert data.max_microversion == (2, 89)
    assert data.api_version == (2, 1)
    assert data.url.rstrip("/") == cloud.compute
    assert utils.maximum_supported_microversion(conn.compute, "2.89") == "2.89"
    assert utils.maximum_supported_microversion(conn.compute, "2.73") == "2.73"


@pytest.mark.parametrize("mv", VERSIONS, ids=lambda v: v or "negotiated")
def test_server_lifecycle(cloud, mv):
    conn = sdk_connection(cloud, mv)
    attrs = {"name": "sdk-server", "flavorRef": FLAVOR_REF, "imageRef": IMAGE_REF}
    if needs_networks(effective(mv, "2.73")):
        attrs["networks"] = "none"
    created = conn.compute.create_server(**attrs)
    assert created.id
    assert created.admin_password, "create must return adminPass"

    server = conn.compute.wait_for_server(created, status="ACTIVE", wait=30)
    assert server.status == "ACTIVE"
    assert server.name == "sdk-server"
    assert server.project_id == cloud.account

    assert conn.compute.get_server(created.id).id == created.id
    assert conn.compute.find_server("sdk-server", ignore_missing=False).id == created.id
    assert created.id in [s.id for s in conn.compute.servers()]
    assert created.id in [s.id for s in conn.compute.servers(details=False)]

    conn.compute.delete_server(created)
    conn.compute.wait_for_delete(created, wait=30)
    assert not cloud.server_exists(created.id)


@pytest.mark.parametrize("mv", VERSIONS, ids=lambda v: v or "negotiated")
def test_volume_attachments(cloud, mv):
    conn = sdk_connection(cloud, mv)
    attrs = {"name": "sdk-attach", "flavorRef": FLAVOR_REF, "imageRef": IMAGE_REF}
    if needs_networks(effective(mv, "2.73")):
        attrs["networks"] = "none"
    sid = conn.compute.wait_for_server(conn.compute.create_server(**attrs), wait=30).id
    vid = cloud.volume(name="sdk-vol")
    assert cloud.volume_state(vid) == ("available", [])
    used = effective(mv, "2.89")
    at_least = lambda v: tuple(map(int, used.split("."))) >= tuple(map(int, v.split(".")))  # noqa: E731

    # create_volume_attachment
    att = conn.compute.create_volume_attachment(sid, volume_id=vid, device="/dev/vdb")
    assert att.volume_id == vid
    assert att.device == "/dev/vdb"
    assert att.id == vid  # the attach response carries id = volumeId at every microversion
    if at_least("2.79"):
        assert att.delete_on_termination is False
        assert att.tag is None
    else:
        assert att.delete_on_termination is None
    assert att.attachment_id is None  # never in the attach response
    assert cloud.volume_state(vid) == ("in-use", [sid])
    assert cloud.attachments(sid) == {vid: "/dev/vdb"}

    # volume_attachments
    listed = list(conn.compute.volume_attachments(sid))
    assert [(a.volume_id, a.device) for a in listed] == [(vid, "/dev/vdb")]
    item = listed[0]
    if at_least("2.89"):
        # id is the sdk's alternate id, attachment_id (a uuid), from 2.89 on
        assert item.attachment_id and item.bdm_id
        assert item.id == item.attachment_id
        assert item.attachment_id != vid
    else:
        assert item.attachment_id is None and item.bdm_id is None
        assert item.id == vid
    if at_least("2.79"):
        assert item.delete_on_termination is False
        assert item.tag is None

    # get_volume_attachment (attachment first, server second), by volume id
    got = conn.compute.get_volume_attachment(vid, sid)
    assert got.volume_id == vid
    assert got.device == "/dev/vdb"
    if at_least("2.89"):
        assert got.attachment_id == item.attachment_id
        assert got.bdm_id == item.bdm_id

    # the server shows the volume too
    assert [v["id"] for v in conn.compute.get_server(sid).attached_volumes] == [vid]

    # delete_volume_attachment
    assert conn.compute.delete_volume_attachment(vid, sid, ignore_missing=False) is None
    assert list(conn.compute.volume_attachments(sid)) == []
    assert cloud.volume_state(vid) == ("available", [])
    assert cloud.attachments(sid) == {}

    # a second delete: 404, which ignore_missing turns into nothing
    from openstack import exceptions
    with pytest.raises(exceptions.ResourceNotFound):
        conn.compute.delete_volume_attachment(vid, sid, ignore_missing=False)
    conn.compute.delete_volume_attachment(vid, sid, ignore_missing=True)
    with pytest.raises(exceptions.ResourceNotFound):
        conn.compute.get_volume_attachment(vid, sid)


@pytest.mark.parametrize("mv", [None, "2.79", "2.89"], ids=lambda v: v or "negotiated")
def test_attach_with_tag_and_delete_on_termination(cloud, mv):
    """The optional attach fields, where the microversion has them (2.49 tag,
    2.79 delete_on_termination); a server deleted with such a volume deletes
    the volume as well (docs/api.md, decision D9)."""
    conn = sdk_connection(cloud, mv)
    sid = cloud.server(name="dot-server")
    keep = cloud.volume(name="keep")
    drop = cloud.volume(name="drop")
    a = conn.compute.create_volume_attachment(sid, volume_id=drop, tag="data", delete_on_termination=True)
    assert (a.volume_id, a.tag, a.delete_on_termination) == (drop, "data", True)
    assert a.device  # attachd picks one when none is given
    b = conn.compute.create_volume_attachment(sid, volume_id=keep)
    assert b.delete_on_termination is False
    assert b.device and b.device != a.device
    listed = {x.volume_id: x for x in conn.compute.volume_attachments(sid)}
    assert set(listed) == {keep, drop}
    assert (listed[drop].tag, listed[drop].delete_on_termination) == ("data", True)
    assert (listed[keep].tag, listed[keep].delete_on_termination) == (None, False)

    server = conn.compute.get_server(sid)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30)
    assert cloud.volume_state(keep) == ("available", [])
    r = cloud.http().get(f"{cloud.compute}/os-volumes/{drop}")
    assert r.status_code == 404, (r.status_code, r.text)


def test_cloud_layer_create_server_without_waiting(cloud):
    """The cloud layer's create_server works without Glance or Neutron when
    image and flavor are given as dicts and has_network is off. With
    wait=True it would delete the server again, because a server without
    addresses counts as failed there (docs/clients.md)."""
    conn = sdk_connection(cloud, has_network=False)
    server = conn.create_server("cloud-layer", image={"id": IMAGE_REF}, flavor={"id": FLAVOR_REF},
                                wait=False)
    assert server.id and server.name == "cloud-layer"
    assert server.status == "ACTIVE"
    assert conn.delete_server(server.id, wait=True, timeout=30) is True
    assert not cloud.server_exists(server.id)
