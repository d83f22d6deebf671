"""tempest.lib (python3-tempest) service clients against attachd, issue 4.

The stock ServersClient and VolumesClient validate every response against
tempest's own JSON schemas (additionalProperties: false almost everywhere,
exact status codes, `uri` and `iso8601-date-time` formats) and, when a
microversion is set, check that the response echoes it in
X-OpenStack-Nova-API-Version. Authentication is the small BasicAuthProvider
in tempest_basic.py. No schema is loosened or replaced.
"""
import pytest

from compat_util import FLAVOR_REF, IMAGE_REF, mv_tuple, needs_networks
from tempest_basic import BasicAuthProvider, BasicCredentials

VERSIONS = ["2.1", "2.70", "2.79"]


@pytest.fixture
def microversion(request):
    """Sets tempest's compute microversion the way tempest's own tests do, and
    puts it back afterwards."""
    from tempest.lib.services.compute import base_compute_client
    saved = base_compute_client.COMPUTE_MICROVERSION
    base_compute_client.COMPUTE_MICROVERSION = request.param
    yield request.param
    base_compute_client.COMPUTE_MICROVERSION = saved


def clients(cloud, admin=False):
    from tempest.lib.services.compute import servers_client, volumes_client
    user, password = (cloud.admin_user, cloud.admin_password) if admin else (cloud.user, cloud.password)
    provider = BasicAuthProvider(BasicCredentials(username=user, password=password), cloud.compute)
    return (servers_client.ServersClient(provider, "compute", "RegionOne"),
            volumes_client.VolumesClient(provider, "compute", "RegionOne"))


def attachment_keys(mv):
    keys = {"id", "serverId", "volumeId", "device"}
    if mv_tuple(mv) >= (2, 70):
        keys.add("tag")
    if mv_tuple(mv) >= (2, 79):
        keys.add("delete_on_termination")
    return keys


@pytest.mark.parametrize("microversion", VERSIONS, indirect=True)
def test_volume_attachments(cloud, microversion):
    servers, _ = clients(cloud)
    admin_servers, _ = clients(cloud, admin=True)
    sid = cloud.server(name="tempest-attach")
    vid = cloud.volume(name="tempest-vol")
    other = cloud.volume(name="tempest-other")

    # attach_volume: 200 + volumeAttachment (schema by microversion)
    body = servers.attach_volume(sid, volumeId=vid, device="/dev/vdb")
    assert body.response.status == 200
    assert body.response["x-openstack-nova-api-version"] == microversion
    att = body["volumeAttachment"]
    assert set(att) == attachment_keys(microversion)
    assert (att["id"], att["volumeId"], att["serverId"], att["device"]) == (vid, vid, sid, "/dev/vdb")
    assert cloud.volume_state(vid) == ("in-use", [sid])

    # list_volume_attachments
    listed = servers.list_volume_attachments(sid)["volumeAttachments"]
    assert [(a["volumeId"], a["serverId"], a["device"]) for a in listed] == [(vid, sid, "/dev/vdb")]

    # show_volume_attachment
    shown = servers.show_volume_attachment(sid, vid)["volumeAttachment"]
    assert shown == listed[0]

    # update_attached_volume: a swap to another volume (admin:
    # docs/api.md, decision D3); 202, no body
    body = admin_servers.update_attached_volume(sid, vid, volumeId=other)
    assert body.response.status == 202
    assert cloud.attachments(sid) == {other: "/dev/vdb"}
    assert cloud.volume_state(vid) == ("available", [])
    assert servers.show_volume_attachment(sid, other)["volumeAttachment"]["volumeId"] == other

    # the stock detach_volume: exactly 202 and no body on /v2.1
    body = servers.detach_volume(sid, other)
    assert body.response.status == 202
    assert servers.list_volume_attachments(sid)["volumeAttachments"] == []
    assert cloud.volume_state(other) == ("available", [])

    from tempest.lib import exceptions
    with pytest.raises(exceptions.NotFound):
        servers.show_volume_attachment(sid, other)
    with pytest.raises(exceptions.NotFound):
        servers.detach_volume(sid, other)


@pytest.mark.parametrize("microversion", VERSIONS, indirect=True)
def test_attach_twice_is_bad_request(cloud, microversion):
    """Nova (and tempest's test_attach_attached_volume_to_same_server) answer a
    second attach of the same volume with 400 on /v2.1."""
    from tempest.lib import exceptions
    servers, _ = clients(cloud)
    sid = cloud.server(name="twice")
    vid = cloud.volume(name="twice-vol")
    servers.attach_volume(sid, volumeId=vid)
    with pytest.raises(exceptions.BadRequest):
        servers.attach_volume(sid, volumeId=vid)
    assert list(cloud.attachments(sid)) == [vid]


@pytest.mark.parametrize("microversion", VERSIONS, indirect=True)
def test_server_calls(cloud, microversion):
    from tempest.lib import exceptions
    servers, _ = clients(cloud)
    kwargs = {"networks": "none"} if needs_networks(microversion) else {}
    created = servers.create_server(name="tempest-server", imageRef=IMAGE_REF, flavorRef=FLAVOR_REF,
                                    **kwargs)
    assert created.response.status == 202
    sid = created["server"]["id"]

    shown = servers.show_server(sid)["server"]
    assert (shown["id"], shown["name"], shown["status"]) == (sid, "tempest-server", "ACTIVE")
    assert shown["tenant_id"] == cloud.account
    assert sid in [s["id"] for s in servers.list_servers()["servers"]]
    assert sid in [s["id"] for s in servers.list_servers(detail=True)["servers"]]

    for call, status in [("stop_server", "SHUTOFF"), ("start_server", "ACTIVE"),
                         ("pause_server", "PAUSED"), ("unpause_server", "ACTIVE"),
                         ("suspend_server", "SUSPENDED"), ("resume_server", "ACTIVE"),
                         ("lock_server", "ACTIVE"), ("unlock_server", "ACTIVE")]:
        body = getattr(servers, call)(sid)
        assert body.response.status == 202, call
        assert servers.show_server(sid)["server"]["status"] == status, call

    # a server with a volume attached, as tempest's schema sees it
    vid = cloud.volume(name="shown")
    servers.attach_volume(sid, volumeId=vid)
    attached = servers.show_server(sid)["server"]["os-extended-volumes:volumes_attached"]
    assert [v["id"] for v in attached] == [vid]
    detail = [s for s in servers.list_servers(detail=True)["servers"] if s["id"] == sid]
    assert [v["id"] for v in detail[0]["os-extended-volumes:volumes_attached"]] == [vid]

    assert servers.delete_server(sid).response.status == 204
    with pytest.raises(exceptions.NotFound):
        servers.show_server(sid)
    assert cloud.volume_state(vid) == ("available", [])


@pytest.mark.parametrize("microversion", [None, "2.1"], indirect=True)
def test_volume_calls(cloud, microversion):
    """The os-volumes proxy (VolumesClient, always tempest's 2.1 schema)."""
    from tempest.lib import exceptions
    servers, volumes = clients(cloud)

    created = volumes.create_volume(size=1, display_name="tempest-os-volume",
                                    display_description="made by tempest")
    assert created.response.status == 200
    vol = created["volume"]
    vid = vol["id"]
    assert (vol["size"], vol["displayName"], vol["displayDescription"]) == (
        1, "tempest-os-volume", "made by tempest")

    shown = volumes.show_volume(vid)["volume"]
    assert (shown["id"], shown["status"]) == (vid, "available")
    assert vid in [v["id"] for v in volumes.list_volumes()["volumes"]]
    assert vid in [v["id"] for v in volumes.list_volumes(detail=True)["volumes"]]

    sid = cloud.server(name="holder")
    servers.attach_volume(sid, volumeId=vid, device="/dev/vdc")
    shown = volumes.show_volume(vid)["volume"]
    assert shown["status"] == "in-use"
    assert [(a["serverId"], a["volumeId"]) for a in shown["attachments"]] == [(sid, vid)]
    servers.detach_volume(sid, vid)
    assert volumes.show_volume(vid)["volume"]["status"] == "available"

    assert volumes.delete_volume(vid).response.status == 202
    with pytest.raises(exceptions.NotFound):
        volumes.show_volume(vid)
    assert volumes.is_resource_deleted(vid)


@pytest.mark.parametrize("microversion", ["2.70", "2.79"], indirect=True)
def test_volume_calls_are_gone_after_2_35(cloud, microversion):
    """Nova serves os-volumes for 2.1-2.35 only (docs/api.md, decision D3);
    tempest sees 404."""
    from tempest.lib import exceptions
    _, volumes = clients(cloud)
    vid = cloud.volume(name="hidden")
    with pytest.raises(exceptions.NotFound):
        volumes.list_volumes()
    with pytest.raises(exceptions.NotFound):
        volumes.show_volume(vid)
