"""python-novaclient 18 (python3-novaclient) against attachd, issue 4.

`novaclient.client.Client('2.x', session=Session(auth=HTTPBasicAuth(...)))`
at 2.1, 2.79 and 2.89: the volume-attachment calls and the server calls.
novaclient does no discovery when the version is explicit; it sends
X-OpenStack-Nova-API-Version (and OpenStack-API-Version from 2.27).
"""
import pytest

from compat_util import FLAVOR_REF, IMAGE_REF, mv_tuple, needs_networks, nova_client

VERSIONS = ["2.1", "2.79", "2.89"]

FIELDS_21 = {"id", "serverId", "volumeId", "device"}


def expected_fields(version, create=False):
    """Attachment keys by microversion (docs/api.md, the Nova dialect's
    attachment sections); the attach response never
    carries the 2.89 fields and keeps `id`."""
    v = mv_tuple(version)
    keys = set(FIELDS_21)
    if v >= (2, 70):
        keys.add("tag")
    if v >= (2, 79):
        keys.add("delete_on_termination")
    if v >= (2, 89) and not create:
        keys -= {"id"}
        keys |= {"attachment_id", "bdm_uuid"}
    return keys


@pytest.mark.parametrize("version", VERSIONS)
def test_server_calls(cloud, version):
    from novaclient import exceptions
    nova = nova_client(cloud, version)
    kwargs = {"nics": "none"} if needs_networks(version) else {}
    created = nova.servers.create("nova-server", IMAGE_REF, FLAVOR_REF, **kwargs)
    sid = created.id
    assert sid
    assert getattr(created, "adminPass", None)

    server = nova.servers.get(sid)
    assert (server.id, server.name, server.status) == (sid, "nova-server", "ACTIVE")
    assert server.tenant_id == cloud.account
    assert sid in [s.id for s in nova.servers.list()]
    assert sid in [s.id for s in nova.servers.list(detailed=False)]
    assert nova.servers.find(name="nova-server").id == sid

    for action, status in [("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"),
                           ("unpause", "ACTIVE"), ("suspend", "SUSPENDED"), ("resume", "ACTIVE")]:
        getattr(nova.servers, action)(sid)
        assert nova.servers.get(sid).status == status, action
    nova.servers.lock(sid)
    assert cloud.server_state(sid) == ("ACTIVE", True)
    nova.servers.unlock(sid)
    assert cloud.server_state(sid) == ("ACTIVE", False)

    nova.servers.delete(sid)
    with pytest.raises(exceptions.NotFound):
        nova.servers.get(sid)
    assert not cloud.server_exists(sid)


@pytest.mark.parametrize("version", VERSIONS)
def test_volume_calls(cloud, version):
    from novaclient import exceptions
    nova = nova_client(cloud, version)
    sid = cloud.server(name="nova-attach")
    vid = cloud.volume(name="nova-vol")

    # create_server_volume
    att = nova.volumes.create_server_volume(sid, vid, "/dev/vdb")
    body = att.to_dict()
    assert set(body) == expected_fields(version, create=True), body
    assert (body["volumeId"], body["serverId"], body["device"]) == (vid, sid, "/dev/vdb")
    assert body["id"] == vid
    if mv_tuple(version) >= (2, 79):
        assert body["tag"] is None and body["delete_on_termination"] is False
    assert cloud.volume_state(vid) == ("in-use", [sid])

    # get_server_volumes
    listed = [a.to_dict() for a in nova.volumes.get_server_volumes(sid)]
    assert len(listed) == 1, listed
    assert set(listed[0]) == expected_fields(version), listed
    assert (listed[0]["volumeId"], listed[0]["serverId"], listed[0]["device"]) == (vid, sid, "/dev/vdb")

    # get_server_volume
    one = nova.volumes.get_server_volume(sid, vid).to_dict()
    assert one == listed[0]

    # delete_server_volume
    nova.volumes.delete_server_volume(sid, vid)
    assert nova.volumes.get_server_volumes(sid) == []
    assert cloud.volume_state(vid) == ("available", [])
    with pytest.raises(exceptions.NotFound):
        nova.volumes.get_server_volume(sid, vid)
    with pytest.raises(exceptions.NotFound):
        nova.volumes.delete_server_volume(sid, vid)


@pytest.mark.parametrize("version", VERSIONS)
def test_update_server_volume_swaps_as_admin(cloud, version):
    """PUT with a different volumeId is a swap, allowed to admins only
    (docs/api.md, decision D3)."""
    from novaclient import exceptions
    member = nova_client(cloud, version)
    admin = nova_client(cloud, version, admin=True)
    sid = cloud.server(name="swap")
    old = cloud.volume(name="old")
    new = cloud.volume(name="new")
    member.volumes.create_server_volume(sid, old, "/dev/vdb")

    with pytest.raises(exceptions.Forbidden):
        member.volumes.update_server_volume(sid, old, new)
    assert cloud.attachments(sid) == {old: "/dev/vdb"}

    admin.volumes.update_server_volume(sid, old, new)
    assert cloud.attachments(sid) == {new: "/dev/vdb"}
    assert cloud.volume_state(old) == ("available", [])
    assert cloud.volume_state(new) == ("in-use", [sid])
    got = member.volumes.get_server_volume(sid, new).to_dict()
    assert (got["volumeId"], got["device"]) == (new, "/dev/vdb")
    with pytest.raises(exceptions.NotFound):
        member.volumes.get_server_volume(sid, old)

    member.volumes.delete_server_volume(sid, new)
    assert cloud.volume_state(new) == ("available", [])


def test_update_server_volume_delete_on_termination(cloud):
    """From 2.85 the same volumeId updates delete_on_termination
    (docs/api.md, decision D3); a member may do that."""
    nova = nova_client(cloud, "2.89")
    sid = cloud.server(name="dot")
    vid = cloud.volume(name="dot-vol")
    nova.volumes.create_server_volume(sid, vid)
    assert nova.volumes.get_server_volume(sid, vid).delete_on_termination is False

    nova.volumes.update_server_volume(sid, vid, vid, delete_on_termination=True)
    got = nova.volumes.get_server_volume(sid, vid)
    assert (got.volumeId, got.delete_on_termination) == (vid, True)
    assert got.device  # unchanged, picked by attachd at attach time
    nova.volumes.update_server_volume(sid, vid, vid, delete_on_termination=False)
    assert nova.volumes.get_server_volume(sid, vid).delete_on_termination is False
    assert cloud.attachments(sid) == {vid: got.device}
