"""Cinder v3 volume writes (issue 9 item 5): POST, PUT and DELETE on
/v3/{project_id}/volumes (and /v3/volumes), in Cinder's shapes
(cinder/api/v3/volumes.py, cinder/api/schemas/volumes.py), so that
`openstack volume create|set|delete` and libcloud's Cinder driver work. Under
the none driver a new volume is available at once; under libvirt it is
creating until its file exists (tests/libvirt)."""
import pytest

from apiutil import assert_nova_error
from openstack_cli import OpenstackCLI
from test_client_compat import check_cinder_detail


def prefixes(w):
    return [f"/v3/{w.a}", "/v3"]


def post(w, pfx, body, session=None):
    return (session or w.sa).post(f"{w.base}{pfx}/volumes", json=body)


@pytest.mark.parametrize("which", [0, 1])
def test_create_show_update_delete(world, which):
    pfx = prefixes(world)[which]
    r = post(world, pfx, {"volume": {"size": 2, "name": "c1", "description": "first",
                                     "metadata": {"k": "v"}, "volume_type": None,
                                     "availability_zone": None, "snapshot_id": None,
                                     "imageRef": None, "source_volid": None,
                                     "consistencygroup_id": None, "backup_id": None,
                                     "whatever": "Cinder ignores what it does not know"}})
    assert r.status_code == 202, r.text
    v = r.json()["volume"]
    vid = v["id"]
    check_cinder_detail(v, world, pfx, vid, "c1", 2)
    assert (v["description"], v["metadata"]) == ("first", {"k": "v"}), v
    shown = world.sa.get(f"{world.base}{pfx}/volumes/{vid}").json()["volume"]
    assert (shown["name"], shown["size"], shown["status"]) == ("c1", 2, "available"), shown
    assert world.sa.get(f"{world.base}/volumes/{vid}").status_code == 200    # Hostway sees it

    r = world.sa.put(f"{world.base}{pfx}/volumes/{vid}",
                     json={"volume": {"name": "c2", "description": None,
                                      "metadata": {"a": "b"}}})
    assert r.status_code == 200, r.text
    v = r.json()["volume"]
    check_cinder_detail(v, world, pfx, vid, "c2", 2)
    assert (v["description"], v["metadata"]) == (None, {"a": "b"}), v
    r = world.sa.put(f"{world.base}{pfx}/volumes/{vid}", json={"volume": {"display_name": "c3"}})
    assert r.status_code == 200 and r.json()["volume"]["name"] == "c3", r.text
    assert r.json()["volume"]["metadata"] == {"a": "b"}            # untouched

    r = world.sa.delete(f"{world.base}{pfx}/volumes/{vid}")
    assert r.status_code == 202 and r.content == b"", r.text
    r = world.sa.get(f"{world.base}{pfx}/volumes/{vid}")
    assert_nova_error(r, 404, "itemNotFound")


def test_v1_names_are_accepted(world):
    r = post(world, f"/v3/{world.a}", {"volume": {"size": "1", "display_name": "old",
                                                  "display_description": "style"}})
    assert r.status_code == 202, r.text
    v = r.json()["volume"]
    assert (v["name"], v["description"], v["size"]) == ("old", "style", 1), v


@pytest.mark.parametrize("body,status,message", [
    ({}, 400, "'volume' is a required property"),
    ({"volume": []}, 400, "is not of type 'object'"),
    ({"volume": {}}, 400, "a volume's size must be given"),
    ({"volume": {"size": None}}, 400, "size"),
    ({"volume": {"size": "x"}}, 400, "size"),
    ({"volume": {"size": 0}}, 400, "size"),
    ({"volume": {"size": True}}, 400, "size"),
    ({"volume": {"size": 1, "name": 5}}, 400, "name"),
    ({"volume": {"size": 1, "name": "n" * 256}}, 400, "name"),
    ({"volume": {"size": 1, "metadata": "x"}}, 400, "metadata"),
    ({"volume": {"size": 1}, "extra": 1}, 400, "Additional properties are not allowed"),
    ({"volume": {"size": 1, "snapshot_id": "s-1"}}, 404, "Snapshot s-1 could not be found."),
    ({"volume": {"size": 1, "source_volid": "v-1"}}, 404, "Volume v-1 could not be found."),
    ({"volume": {"size": 1, "backup_id": "b-1"}}, 404, "Backup b-1 could not be found."),
    ({"volume": {"size": 1, "imageRef": "i-1"}}, 400, "does not make volumes from images"),
    ({"volume": {"size": 1, "multiattach": True}}, 400, "multiattach"),
])
def test_bad_creates_make_nothing(world, body, status, message):
    before = world.sa.get(f"{world.base}/v3/{world.a}/volumes").json()["volumes"]
    r = post(world, f"/v3/{world.a}", body)
    f = assert_nova_error(r, status, "badRequest" if status == 400 else "itemNotFound")
    assert message in f["message"], f
    assert world.sa.get(f"{world.base}/v3/{world.a}/volumes").json()["volumes"] == before


@pytest.mark.parametrize("body,message", [
    ({"volume": {"size": 3}}, "Additional properties are not allowed ('size' was unexpected)"),
    ({"volume": {"name": 7}}, "name"),
    ({"volume": {"metadata": []}}, "metadata"),
    ({"volumes": {}}, "'volume' is a required property"),
])
def test_bad_updates_change_nothing(world, body, message):
    vid = world.d.add_volume(world.a, name="keep")
    r = world.sa.put(f"{world.base}/v3/{world.a}/volumes/{vid}", json=body)
    f = assert_nova_error(r, 400, "badRequest")
    assert message in f["message"], f
    assert world.sa.get(f"{world.base}/v3/volumes/{vid}").json()["volume"]["name"] == "keep"


def test_paging_takes_the_first_value_as_cinder_does(world):
    """Cinder's get_pagination_params() pops limit and offset: the first
    value counts, and a bad one gets Cinder's own text (not Nova's schema)."""
    for name in ("p1", "p2"):
        world.d.add_volume(world.a, name=name)
    url = f"{world.base}/v3/{world.a}/volumes"
    assert len(world.sa.get(f"{url}?limit=1&limit=5").json()["volumes"]) == 1
    assert len(world.sa.get(f"{url}?limit=2&limit=x").json()["volumes"]) == 2
    for query, message in [("limit=x&limit=1", "limit param must be an integer"),
                           ("limit=-1", "limit param must be positive"),
                           ("offset=1&offset=y", None),
                           ("offset=y&offset=1", "offset param must be an integer")]:
        r = world.sa.get(f"{url}?{query}")
        if message is None:
            assert r.status_code == 200, r.text
        else:
            assert_nova_error(r, 400, "badRequest", message)


def test_other_accounts_volumes_are_not_found(world):
    vid = world.d.add_volume(world.b, name="theirs")
    r = world.sa.put(f"{world.base}/v3/volumes/{vid}", json={"volume": {"name": "mine"}})
    assert_nova_error(r, 404, "itemNotFound")
    assert_nova_error(world.sa.delete(f"{world.base}/v3/volumes/{vid}"), 404, "itemNotFound")
    assert world.sb.get(f"{world.base}/v3/volumes/{vid}").json()["volume"]["name"] == "theirs"


def test_attached_volume_is_not_deleted(world):
    sid = world.d.add_server(world.a, name="holder")
    vid = world.d.add_volume(world.a, name="held")
    r = world.sa.post(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments",
                      json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    r = world.sa.delete(f"{world.base}/v3/{world.a}/volumes/{vid}")
    f = assert_nova_error(r, 400, "badRequest")
    assert f["message"].startswith("Invalid volume: Volume status must be available"), f
    assert world.sa.get(f"{world.base}/v3/volumes/{vid}").json()["volume"]["status"] == "in-use"


def test_openstack_cli_volume_create_set_delete(world, tmp_path):
    """`openstack volume create`, `volume set` and `volume delete`, as a user
    runs them (block_storage_endpoint_override at /v3/{project})."""
    openstack = OpenstackCLI(tmp_path, world.base, world.a_user, world.a_pw, world.a)
    made = openstack("volume", "create", "--size", "1", "--description", "by the CLI",
                     "--property", "team=ops", "cli-vol")
    assert (made["name"], made["size"], made["status"]) == ("cli-vol", 1, "available"), made
    openstack("volume", "set", "--name", "cli-vol-2", "--description", "renamed", made["id"],
              as_json=False)
    shown = openstack("volume", "show", made["id"])
    assert (shown["name"], shown["description"]) == ("cli-vol-2", "renamed"), shown
    openstack("volume", "delete", made["id"], as_json=False)
    assert world.sa.get(f"{world.base}/v3/volumes/{made['id']}").status_code == 404
