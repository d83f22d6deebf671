"""More tempest.lib (python3-tempest) service clients against attachd.

test_compat_tempest.py covers servers, their power actions, attachments and
os-volumes. This file adds the calls tempest makes around them, each through
the stock client, so that every response is validated against tempest's own
JSON schema (additionalProperties: false, exact status codes, the echoed
X-OpenStack-Nova-API-Version); no schema is loosened or replaced:

* FlavorsClient: list_flavors (brief and detail, with Nova's filters),
  show_flavor and the os-extra_specs calls; tempest picks the 2.1, 2.55 or
  2.61 flavor schema by microversion.
* the compute ImagesClient (Nova's image proxy): list_images (brief and
  detail), show_image; 404 from microversion 2.36 on, as in Nova.
* ServersClient.reboot_server (SOFT and HARD, with Nova's state rules) and
  get_console_output.
* Glance v2 at /image through tempest.lib.services.image.v2's ImagesClient
  and VersionsClient (status codes only: tempest.lib ships no Glance
  response schemas).

The images are the operator's, made with `attachd image add` as
tests/api/test_images.py does (docs/api.md, decision D11).
"""
import pytest

from compat_util import FLAVOR_REF, mv_tuple, needs_networks
from tempest_basic import BasicAuthProvider, BasicCredentials
from test_compat_tempest import VERSIONS, clients

# Nova's classic flavors, what attachd serves when its configuration names
# none: (id, name, vcpus, ram MiB, disk GiB).
CLASSIC = [("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20),
           ("3", "m1.medium", 2, 4096, 40), ("4", "m1.large", 4, 8192, 80),
           ("5", "m1.xlarge", 8, 16384, 160)]


@pytest.fixture
def microversion(request):
    """Sets tempest's compute microversion the way tempest's own tests do, and
    puts it back afterwards (as in test_compat_tempest.py)."""
    from tempest.lib.services.compute import base_compute_client
    saved = base_compute_client.COMPUTE_MICROVERSION
    base_compute_client.COMPUTE_MICROVERSION = request.param
    yield request.param
    base_compute_client.COMPUTE_MICROVERSION = saved


def provider(cloud):
    """The member's BasicAuthProvider for the compute endpoint."""
    return BasicAuthProvider(BasicCredentials(username=cloud.user, password=cloud.password),
                             cloud.compute)


# -- flavors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("microversion", VERSIONS, indirect=True)
def test_flavors(cloud, microversion):
    """tempest's api/compute/flavors tests: the list (brief and detail, the
    minRam/minDisk filters), one flavor, and its extra specs. The schema is
    tempest's 2.1 one up to 2.54, 2.55's (description) and 2.61's
    (extra_specs in the flavor) after it."""
    from tempest.lib import exceptions
    from tempest.lib.services.compute import flavors_client
    flavors = flavors_client.FlavorsClient(provider(cloud), "compute", "RegionOne")

    brief = flavors.list_flavors()
    assert brief.response.status == 200
    assert brief.response["x-openstack-nova-api-version"] == microversion
    assert [(f["id"], f["name"]) for f in brief["flavors"]] == [(c[0], c[1]) for c in CLASSIC]

    detail = flavors.list_flavors(detail=True)["flavors"]
    assert [(f["id"], f["name"], f["vcpus"], f["ram"], f["disk"]) for f in detail] == CLASSIC
    for f in detail:
        assert f["os-flavor-access:is_public"] is True
        # description from 2.55, extra_specs from 2.61, as in Nova
        assert f.get("description", "absent") == (None if mv_tuple(microversion) >= (2, 55) else "absent")
        assert f.get("extra_specs", "absent") == ({} if mv_tuple(microversion) >= (2, 61) else "absent")

    # Nova's filters, as tempest's test_list_flavors_detailed_filter_by_min_*
    # send them: the flavors with at least that much
    big = flavors.list_flavors(detail=True, minRam=4096)["flavors"]
    assert [f["id"] for f in big] == ["3", "4", "5"]
    big = flavors.list_flavors(minDisk=80)["flavors"]
    assert [f["id"] for f in big] == ["4", "5"]

    shown = flavors.show_flavor(FLAVOR_REF)
    assert shown.response.status == 200
    assert shown["flavor"] == detail[0]

    # extra specs: none of the flavors has any
    specs = flavors.list_flavor_extra_specs(FLAVOR_REF)
    assert specs.response.status == 200
    assert specs["extra_specs"] == {}
    with pytest.raises(exceptions.NotFound):
        flavors.show_flavor_extra_spec(FLAVOR_REF, "hw:cpu_policy")

    with pytest.raises(exceptions.NotFound):
        flavors.show_flavor("no-such-flavor")
    with pytest.raises(exceptions.NotFound):
        flavors.list_flavor_extra_specs("no-such-flavor")


# -- the compute image proxy ------------------------------------------------------------------

@pytest.mark.parametrize("microversion", [None, "2.1", "2.35"], indirect=True)
def test_compute_images(cloud, microversion):
    """Nova's image proxy (/v2.1/images), which tempest's compute
    ImagesClient checks against its 2.1 image schema. The list is the
    newest first, as Glance orders it."""
    from tempest.lib import exceptions
    from tempest.lib.services.compute import images_client
    images = images_client.ImagesClient(provider(cloud), "compute", "RegionOne")
    cirros = cloud.image("cirros")
    first, second = cirros.id, cloud.image("debian", 8192, image_id="deb-12").id

    brief = images.list_images()
    assert brief.response.status == 200
    if microversion is not None:
        assert brief.response["x-openstack-nova-api-version"] == microversion
    assert [(i["id"], i["name"]) for i in brief["images"]] == [(second, "debian"), (first, "cirros")]

    detail = images.list_images(detail=True)["images"]
    assert [i["id"] for i in detail] == [second, first]
    got = detail[1]
    assert (got["name"], got["status"], got["progress"], got["minDisk"], got["minRam"],
            got["metadata"], got["OS-EXT-IMG-SIZE:size"]) == \
        ("cirros", "ACTIVE", 100, 0, 0, {}, cirros.size)

    # the name filter, as tempest's test_list_images_filter_by_name sends it
    assert [i["id"] for i in images.list_images(name="debian")["images"]] == [second]

    shown = images.show_image(first)
    assert shown.response.status == 200
    assert shown["image"] == got

    with pytest.raises(exceptions.NotFound):
        images.show_image("no-such-image")

    # a server made from the image names it
    servers, _ = clients(cloud)
    sid = servers.create_server(name="from-image", imageRef=first, flavorRef=FLAVOR_REF)["server"]["id"]
    assert servers.show_server(sid)["server"]["image"]["id"] == first


@pytest.mark.parametrize("microversion", ["2.36", "2.70", "2.79"], indirect=True)
def test_compute_images_are_gone_after_2_35(cloud, microversion):
    """Nova serves the image proxy for 2.1-2.35 only (docs/api.md, decision
    D11); tempest sees 404."""
    from tempest.lib import exceptions
    from tempest.lib.services.compute import images_client
    images = images_client.ImagesClient(provider(cloud), "compute", "RegionOne")
    image_id = cloud.image("cirros").id
    with pytest.raises(exceptions.NotFound):
        images.list_images()
    with pytest.raises(exceptions.NotFound):
        images.list_images(detail=True)
    with pytest.raises(exceptions.NotFound):
        images.show_image(image_id)


# -- reboot and the console -------------------------------------------------------------------

@pytest.mark.parametrize("microversion", VERSIONS, indirect=True)
def test_reboot_and_console_output(cloud, microversion):
    """reboot_server as tempest's test_reboot_server_soft/hard call it, with
    Nova's state rules (a SOFT reboot from ACTIVE only, a HARD one also from
    SHUTOFF, PAUSED and SUSPENDED; otherwise 409), and get_console_output,
    which is "" under the none driver (no console)."""
    from tempest.lib import exceptions
    servers, _ = clients(cloud)
    kwargs = {"networks": "none"} if needs_networks(microversion) else {}
    image_id = cloud.image("cirros").id
    sid = servers.create_server(name="tempest-reboot", imageRef=image_id, flavorRef=FLAVOR_REF,
                                **kwargs)["server"]["id"]

    def status():
        return servers.show_server(sid)["server"]["status"]

    for kind in ("SOFT", "HARD"):
        body = servers.reboot_server(sid, type=kind)
        assert body.response.status == 202, kind
        assert body.response["x-openstack-nova-api-version"] == microversion
        assert status() == "ACTIVE", kind

    for into, state in (("stop_server", "SHUTOFF"), ("pause_server", "PAUSED"),
                        ("suspend_server", "SUSPENDED")):
        getattr(servers, into)(sid)
        assert status() == state
        with pytest.raises(exceptions.Conflict):
            servers.reboot_server(sid, type="SOFT")
        assert status() == state
        assert servers.reboot_server(sid, type="HARD").response.status == 202, state
        assert status() == "ACTIVE", state

    with pytest.raises(exceptions.BadRequest):
        servers.reboot_server(sid, type="GENTLE")
    with pytest.raises(exceptions.NotFound):
        servers.reboot_server("no-such-server", type="SOFT")

    # get_console_output: with a length, as tempest's
    # test_get_console_output sends it, and without one
    out = servers.get_console_output(sid, length=10)
    assert out.response.status == 200
    assert out.response["x-openstack-nova-api-version"] == microversion
    assert out["output"] == ""
    assert servers.get_console_output(sid)["output"] == ""
    assert servers.get_console_output(sid, length=None)["output"] == ""
    with pytest.raises(exceptions.BadRequest):
        servers.get_console_output(sid, length="ten")
    with pytest.raises(exceptions.NotFound):
        servers.get_console_output("no-such-server", length=10)


# -- Glance v2 at /image ----------------------------------------------------------------------

class CatalogBasicAuthProvider(BasicAuthProvider):
    """BasicAuthProvider for an endpoint as a Keystone catalog lists it
    (Glance's is unversioned: http://HOST:PORT/image). tempest's Keystone
    providers apply the client's filters to the catalog URL with
    tempest.lib.auth.apply_url_filters, which puts the client's api_version
    (the Glance clients' "v2") into it; this one does the same."""

    def base_url(self, filters, auth_data=None):
        from tempest.lib import auth
        return auth.apply_url_filters(self.endpoint, filters)


def test_glance_v2_images(cloud):
    """tempest.lib.services.image.v2 against attachd's Glance v2 at /image:
    VersionsClient.list_versions (Glance's 300 version list, read without
    credentials at the root of the endpoint) and ImagesClient.list_images /
    show_image. tempest.lib has no response schemas for Glance, so the
    clients check the status codes (300, 200) and the test checks the bodies
    the way tempest's api/image/v2 tests read them."""
    from tempest.lib import exceptions
    from tempest.lib.services.image.v2 import images_client, versions_client
    auth = CatalogBasicAuthProvider(BasicCredentials(username=cloud.user, password=cloud.password),
                                    cloud.base + "/image")
    versions = versions_client.VersionsClient(auth, "image", "RegionOne")
    images = images_client.ImagesClient(auth, "image", "RegionOne")
    assert images.base_url == cloud.base + "/image/v2"

    listed = versions.list_versions()
    assert listed.response.status == 300
    assert [(v["id"], v["status"]) for v in listed["versions"]] == [("v2.0", "CURRENT")]
    # the version's own link is where the v2 clients send their requests
    assert [link["href"] for link in listed["versions"][0]["links"]] == [images.base_url + "/"]
    assert versions.has_version("2.0")
    assert not versions.has_version("1.0")

    cirros = cloud.image("cirros")
    first, second = cirros.id, cloud.image("debian", 8192, image_id="deb-12").id

    body = images.list_images()
    assert body.response.status == 200
    assert [(i["id"], i["name"]) for i in body["images"]] == [(second, "debian"), (first, "cirros")]
    assert body["first"].startswith("/v2/images")
    assert body["schema"] == "/v2/schemas/images"

    # tempest's test_list_images_param_* filters
    assert [i["id"] for i in images.list_images(params={"name": "cirros"})["images"]] == [first]
    assert [i["id"] for i in images.list_images(params={"visibility": "public"})["images"]] == \
        [second, first]
    assert [i["id"] for i in images.list_images(params={"limit": 1})["images"]] == [second]

    shown = images.show_image(first)
    assert shown.response.status == 200
    assert (shown["id"], shown["name"], shown["status"], shown["visibility"], shown["size"],
            shown["checksum"], shown["disk_format"], shown["container_format"]) == \
        (first, "cirros", "active", "public", cirros.size, cirros.md5, "raw", "bare")
    assert shown == [i for i in images.list_images()["images"] if i["id"] == first][0]

    with pytest.raises(exceptions.NotFound):
        images.show_image("no-such-image")
    # read-only (decision D11): tempest's own create call is refused
    with pytest.raises(exceptions.UnexpectedResponseCode) as refused:
        images.create_image(name="mine", container_format="bare", disk_format="raw")
    assert refused.value.resp.status == 405
