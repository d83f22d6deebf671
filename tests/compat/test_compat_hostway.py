"""The Hostway dialect through keystoneauth sessions, issue 4.

The same attach/list/show/detach flow as the Nova clients, on the Hostway
paths `/` and `/accounts/{accountId}/flexcloud`, driven with a keystoneauth1
Session carrying the http_basic plugin (the way any keystoneauth-based tool
would call them). As docs/api.md, decision D2 says: detach is 204 with an empty body, GET of one
attachment returns the Hostway volume, and errors are
{"<name>": {"message", "code", "details", "errorid"}} in that order.
"""
import uuid

import pytest

from compat_util import UNAUTHORIZED_BODY, UUID4, keystone_session

PREFIXES = ["root", "account"]


def adapter(cloud, prefix, user=None, password=None, account=None):
    from keystoneauth1 import adapter as ks_adapter
    base = cloud.base + "/" if prefix == "root" else \
        f"{cloud.base}/accounts/{account or cloud.account}/flexcloud/"
    sess = keystone_session(user or cloud.user, password or cloud.password, base)
    return ks_adapter.Adapter(sess, endpoint_override=base.rstrip("/"), raise_exc=False)


def hostway_error(r, code, name, message=None):
    assert r.status_code == code, (r.status_code, r.text)
    assert r.headers["Content-Type"].split(";")[0] == "application/json", r.headers
    body = r.json()
    assert list(body) == [name], body
    err = body[name]
    assert list(err) == ["message", "code", "details", "errorid"], err
    assert err["code"] == code
    assert isinstance(err["details"], str)
    assert UUID4.match(err["errorid"]), err
    if message is not None:
        assert err["message"] == message, err
    return err


@pytest.mark.parametrize("prefix", PREFIXES)
def test_attach_list_show_detach(cloud, prefix):
    api = adapter(cloud, prefix)
    sid = cloud.server(name="hostway")
    vid = cloud.volume(name="hbs", size=10)

    r = api.post(f"/servers/{sid}/os-volume_attachments",
                 json={"volumeAttachment": {"volumeId": vid, "device": "/dev/test"}})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == {"volumeAttachment": {"id": vid, "serverId": sid, "volumeId": vid,
                                             "device": "/dev/test"}}

    r = api.get(f"/servers/{sid}/os-volume_attachments")
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == {"volumeAttachments": [{"id": vid, "serverId": sid, "volumeId": vid,
                                               "device": "/dev/test"}]}

    # GET of one attachment gives the Hostway (snake_case) volume
    r = api.get(f"/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 200, (r.status_code, r.text)
    vol = r.json()["volume"]
    assert list(r.json()) == ["volume"]
    assert (vol["id"], vol["display_name"], vol["size"]) == (vid, "hbs", 10)
    for key in ("display_description", "volume_type", "metadata", "availability_zone",
                "attachments", "links", "snapshot_id", "created_at"):
        assert key in vol, (key, vol)
    assert vol["status"] == "in-use"

    # attaching it again is a Hostway conflict
    r = api.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}})
    hostway_error(r, 409, "conflict", "VolumeAlreadyAttached")

    # detach: 204, no body bytes; the volume is available again
    r = api.delete(f"/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 204, (r.status_code, r.text)
    assert r.content == b""
    assert api.get(f"/servers/{sid}/os-volume_attachments").json() == {"volumeAttachments": []}
    assert cloud.volume_state(vid) == ("available", [])
    r = api.get(f"/volumes/{vid}")
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["volume"]["status"] == "available"

    # and a second detach is a Hostway 404
    r = api.delete(f"/servers/{sid}/os-volume_attachments/{vid}")
    hostway_error(r, 404, "itemNotFound", "Resource not found")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_no_microversions_on_hostway_paths(cloud, prefix):
    """A Nova microversion header does not change the Hostway bodies
    (docs/api.md, decision D2):
    the attachment fields stay the 2.1 set."""
    api = adapter(cloud, prefix)
    sid = cloud.server()
    vid = cloud.volume()
    hdr = {"OpenStack-API-Version": "compute 2.89", "X-OpenStack-Nova-API-Version": "2.89"}
    r = api.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}},
                 headers=hdr)
    assert r.status_code == 200, (r.status_code, r.text)
    assert set(r.json()["volumeAttachment"]) == {"id", "serverId", "volumeId", "device"}
    r = api.get(f"/servers/{sid}/os-volume_attachments", headers=hdr)
    assert [set(a) for a in r.json()["volumeAttachments"]] == [{"id", "serverId", "volumeId", "device"}]
    r = api.delete(f"/servers/{sid}/os-volume_attachments/{vid}", headers=hdr)
    assert (r.status_code, r.content) == (204, b"")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_errors(cloud, prefix):
    api = adapter(cloud, prefix)
    sid = cloud.server()
    vid = cloud.volume()
    seen = set()
    for r in (api.get(f"/servers/{uuid.uuid4()}/os-volume_attachments"),
              api.post(f"/servers/{uuid.uuid4()}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": vid}}),
              api.post(f"/servers/{sid}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": str(uuid.uuid4())}}),
              api.get(f"/servers/{sid}/os-volume_attachments/{vid}"),
              api.delete(f"/servers/{sid}/os-volume_attachments/{vid}")):
        err = hostway_error(r, 404, "itemNotFound", "Resource not found")
        seen.add(err["errorid"])
    assert len(seen) == 5, "errorid must be fresh for every error"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_bad_password_is_the_seed_401(cloud, prefix):
    sid = cloud.server()
    api = adapter(cloud, prefix, password="wrong-" + cloud.password)
    for r in (api.get(f"/servers/{sid}/os-volume_attachments"),
              api.delete(f"/servers/{sid}/os-volume_attachments/nothing")):
        assert r.status_code == 401, (r.status_code, r.text)
        assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert r.headers["WWW-Authenticate"] == 'Basic realm="attachd"'
        assert r.content == UNAUTHORIZED_BODY


def test_another_accounts_prefix_is_not_found(cloud):
    other = cloud.d.add_account("elsewhere")
    sid = cloud.server()
    api = adapter(cloud, "account", account=other)
    hostway_error(api.get(f"/servers/{sid}/os-volume_attachments"), 404, "itemNotFound",
                  "Resource not found")


def test_seed_example(cloud):
    """The request of Hostway's DetachVolumeFromServer page (docs/api.md), with
    the ids it shows (docs/api.md, decision D5)."""
    sid = cloud.server(name="test-server", server_id="test-server-0013")
    vid = cloud.volume(name="seed", volume_id="hbs2012May03_0OxRg0Jz7")
    api = adapter(cloud, "root")
    r = api.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, (r.status_code, r.text)
    r = api.delete("/servers/test-server-0013/os-volume_attachments/hbs2012May03_0OxRg0Jz7")
    assert (r.status_code, r.content) == (204, b"")
    assert cloud.volume_state(vid) == ("available", [])


@pytest.mark.parametrize("prefix", PREFIXES)
def test_volumes(cloud, prefix):
    """Hostway volumes (snake_case) at /volumes; delete is 204
    (docs/api.md, decision D2)."""
    api = adapter(cloud, prefix)
    vid = cloud.volume(name="listed", size=2)
    r = api.get("/volumes")
    assert r.status_code == 200, (r.status_code, r.text)
    assert [(v["id"], v["display_name"], v["size"]) for v in r.json()["volumes"]] == [(vid, "listed", 2)]
    r = api.get("/volumes/detail")
    assert r.status_code == 200, (r.status_code, r.text)
    assert [v["id"] for v in r.json()["volumes"]] == [vid]
    r = api.get(f"/volumes/{vid}")
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["volume"]["id"] == vid
    r = api.delete(f"/volumes/{vid}")
    assert (r.status_code, r.content) == (204, b"")
    hostway_error(api.get(f"/volumes/{vid}"), 404, "itemNotFound", "Resource not found")
