"""Images: read-only, in Nova's image proxy and in Glance v2's shapes (issue 9).

The images are the operator's (`attachd image add`), public: every account
sees every one (docs/api.md, decision D11).

* Nova's proxy, GET /images, /images/detail and /images/{image_id}, in both
  dialects as flavors are (nova/api/openstack/compute/views/images.py),
  served up to microversion 2.35 and 404 from 2.36 on, as Nova does;
  limit/marker paging with Nova's next link, the name and status filters.
* Glance v2 at /image: the version list (300, as Glance's root answers),
  GET /image/v2/images (name and the other filters, limit, marker, Glance's
  first/next/schema) and GET /image/v2/images/{image_id}, with Glance's
  error bodies; enough for `openstack image list`, `openstack image show
  NAME`, openstacksdk's image.find_image and compute.find_image.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

import pytest

from apiutil import (ISO_Z, PREFIX_KINDS, Conn, RawAsRequests, assert_error, assert_json,
                     assert_nova_error, assert_request_ids, assert_unauthorized, basic,
                     dialect_of, ordered, prefix)
from attachd import Attachd

DETAIL_KEYS = ["id", "name", "minRam", "minDisk", "metadata", "created", "updated", "status",
               "progress", "OS-EXT-IMG-SIZE:size", "links"]
GLANCE_KEYS = ["name", "disk_format", "container_format", "visibility", "size", "virtual_size",
               "status", "checksum", "protected", "min_ram", "min_disk", "owner", "os_hidden",
               "os_hash_algo", "os_hash_value", "id", "created_at", "updated_at", "tags", "self",
               "file", "schema"]


class Img:
    def __init__(self, image_id, name, path, disk_format, virtual_size):
        data = open(path, "rb").read()
        self.id, self.name, self.disk_format = image_id, name, disk_format
        self.size, self.virtual_size = len(data), virtual_size
        self.md5 = hashlib.md5(data).hexdigest()
        self.sha512 = hashlib.sha512(data).hexdigest()


def add_image(d, tmp, name, size=4096, image_id=None, qcow2=False):
    """`attachd image add` of a raw file of SIZE bytes, or of a qcow2 of a
    SIZE-byte disk."""
    path = os.path.join(tmp, name.replace("/", "_") + (".qcow2" if qcow2 else ".raw"))
    if qcow2:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(size)], check=True)
    else:
        with open(path, "wb") as f:
            f.write(os.urandom(size))
    args = ["image", "add", "--name", name, "--file", path,
            "--image-dir", os.path.join(tmp, "images")]
    if image_id:
        args += ["--id", image_id]
    made = d.cli(*args).stdout.strip()
    return Img(made, name, path, "qcow2" if qcow2 else "raw", size)


HAVE_QEMU_IMG = shutil.which("qemu-img") is not None


@pytest.fixture(scope="module")
def imgs(world, tmp_path_factory):
    """Three images, oldest first (the API lists the newest first)."""
    tmp = str(tmp_path_factory.mktemp("images"))
    made = [add_image(world.d, tmp, "cirros"),
            add_image(world.d, tmp, "debian", 64 << 20, image_id="deb-12", qcow2=HAVE_QEMU_IMG),
            add_image(world.d, tmp, "with space", 512, image_id="img.3")]
    if not HAVE_QEMU_IMG:
        made[1].disk_format = "raw"
    return made


def newest_first(imgs):
    return list(reversed(imgs))


def mv(version):
    return {"OpenStack-API-Version": f"compute {version}"} if version else {}


def get(world, kind, tail, version=None, who=None):
    r = (who or world.sa).get(f"{world.base}{prefix(kind, world.a)}{tail}",
                              headers=mv(version) if dialect_of(kind) == "nova" else {})
    assert_request_ids(r)
    assert r.status_code != 500, r.text
    return r


def glance(world, tail, who=None, **kw):
    r = (who or world.sa).get(f"{world.base}/image{tail}", **kw)
    assert_request_ids(r)
    assert r.status_code < 500, r.text
    return r


def ids(r, key="images"):
    assert r.status_code == 200, (r.status_code, r.text)
    return [i["id"] for i in assert_json(r)[key]]


def assert_glance_error(r, status, title, message):
    assert r.status_code == status, (r.status_code, r.text)
    assert_json(r)
    assert ordered(r.text) == [("message", f"{message}<br /><br />\n\n\n"),
                               ("code", f"{status} {title}"), ("title", title)], r.text


# -- Nova's image proxy: shapes ---------------------------------------------------------------

def links(world, kind, image_id):
    pfx = prefix(kind, world.a)
    if dialect_of(kind) == "hostway":
        return [[("href", f"{world.base}{pfx}/images/{image_id}"), ("rel", "self")]]
    bookmark = f"/{world.a}" if kind == "nova-proj" else ""
    return [[("rel", "self"), ("href", f"{world.base}{pfx}/images/{image_id}")],
            [("rel", "bookmark"), ("href", f"{world.base}{bookmark}/images/{image_id}")],
            [("rel", "alternate"), ("type", "application/vnd.openstack.image"),
             ("href", f"{world.base}/image/images/{image_id}")]]


def expected_brief(world, kind, img):
    return [("id", img.id), ("name", img.name), ("links", links(world, kind, img.id))]


def check_detail(world, kind, got, img):
    assert [k for k, _ in got] == DETAIL_KEYS, got
    g = dict(got)
    assert ISO_Z.match(g["created"]) and ISO_Z.match(g["updated"]), got
    assert (g["id"], g["name"], g["minRam"], g["minDisk"], g["metadata"], g["status"],
            g["progress"], g["OS-EXT-IMG-SIZE:size"], g["links"]) == \
        (img.id, img.name, 0, 0, [], "ACTIVE", 100, img.size, links(world, kind, img.id))


SERVED = [None, "2.1", "2.35"]
SHAPES = [(k, v) for k in PREFIX_KINDS for v in (SERVED if k.startswith("nova") else [None])]


@pytest.mark.parametrize("kind,version", SHAPES)
def test_nova_list_shape(world, imgs, kind, version):
    r = get(world, kind, "/images", version)
    assert r.status_code == 200, r.text
    assert ordered(r.text) == [("images", [expected_brief(world, kind, i)
                                           for i in newest_first(imgs)])]


@pytest.mark.parametrize("kind,version", SHAPES)
def test_nova_detail_and_show_shape(world, imgs, kind, version):
    r = get(world, kind, "/images/detail", version)
    assert r.status_code == 200, r.text
    body = ordered(r.text)
    assert [k for k, _ in body] == ["images"]
    for got, img in zip(body[0][1], newest_first(imgs), strict=True):
        check_detail(world, kind, got, img)
    for img in imgs:
        r = get(world, kind, f"/images/{img.id}", version)
        assert r.status_code == 200, r.text
        body = ordered(r.text)
        assert [k for k, _ in body] == ["image"]
        check_detail(world, kind, body[0][1], img)


@pytest.mark.parametrize("version", ["2.36", "2.37", "2.89", "latest"])
@pytest.mark.parametrize("tail", ["/images", "/images/detail", "/images/deb-12",
                                  "/images/unknown"])
def test_nova_proxy_is_gone_from_2_36(world, imgs, version, tail):
    for kind in ("nova", "nova-proj"):
        assert_nova_error(get(world, kind, tail, version), 404, "itemNotFound",
                          "The resource could not be found.")


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_nova_unknown_image_is_404(world, imgs, kind):
    for image_id in ("nope", "cirros", "70a599e0-31e7-49b7-b260-868f441e862b", "x" * 255):
        assert_error(dialect_of(kind), get(world, kind, f"/images/{image_id}"), 404,
                     nova_message="Image not found.", hostway_message="Resource not found")


def test_every_account_sees_the_images(world, imgs):
    want = [i.id for i in newest_first(imgs)]
    for who in (world.sa, world.sb, world.admin):
        assert ids(get(world, "nova", "/images", who=who)) == want
        assert ids(glance(world, "/v2/images", who=who)) == want
    r = world.admin.get(f"{world.base}/v2.1/{world.b}/images/deb-12")
    assert r.status_code == 200, r.text
    assert_nova_error(world.sa.get(f"{world.base}/v2.1/{world.b}/images"), 404, "itemNotFound")


@pytest.mark.parametrize("tail", ["/v2.1/images", "/v2.1/images/detail", "/v2.1/images/deb-12",
                                  "/images", "/images/deb-12", "/image/v2/images",
                                  "/image/v2/images/deb-12", "/image/v2/images?name=cirros"])
def test_credentials_are_needed(world, imgs, tail):
    assert_unauthorized(world.anon.get(world.base + tail))


# -- Nova's image proxy: paging and filters ---------------------------------------------

@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_nova_paging(world, imgs, kind):
    pfx = prefix(kind, world.a)
    order = [i.id for i in newest_first(imgs)]
    r = get(world, kind, "/images?limit=2")
    assert ids(r) == order[:2]
    assert r.json()["images_links"] == [
        {"rel": "next", "href": f"{world.base}{pfx}/images?limit=2&marker={order[1]}"}]
    r = get(world, kind, f"/images/detail?marker={order[1]}&limit=2")
    assert ids(r) == order[2:] and "images_links" not in r.json()
    r = get(world, kind, f"/images/detail?limit=1&marker={order[0]}&name=debian")
    assert ids(r) == ["deb-12"]
    assert r.json()["images_links"][0]["href"] == \
        f"{world.base}{pfx}/images/detail?limit=1&marker=deb-12&name=debian"
    assert ids(get(world, kind, "/images?limit=0")) == []
    assert ids(get(world, kind, "/images?limit=99999999999999999999999")) == order
    assert ids(get(world, kind, f"/images?marker={order[-1]}")) == []


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_nova_bad_paging_is_400(world, imgs, kind):
    """Nova's images.py: its query schema's integers (every value), then the
    marker (the last given)."""
    def schema(name, value, why):
        return f"Invalid input for query parameters {name}. Value: {value}. {why}"
    for query, message in [("limit=-1", schema("limit", "-1", "'-1' does not match '^[0-9]*$'")),
                           ("limit=x", schema("limit", "x", "'x' does not match '^[0-9]*$'")),
                           ("limit=", schema("limit", "", "'' is too short")),
                           ("limit=1.5", schema("limit", "1.5",
                                                "'1.5' does not match '^[0-9]*$'")),
                           ("limit=1&limit=x", schema("limit", "x",
                                                      "'x' does not match '^[0-9]*$'")),
                           ("offset=x&page_size=y", schema("page_size", "y",
                                                           "'y' does not match '^[0-9]*$'")),
                           ("offset=-1", schema("offset", "-1",
                                                "'-1' does not match '^[0-9]*$'")),
                           ("limit=%0A", "Invalid input received: limit must be an integer"),
                           ("limit=%0A&offset=x", schema("offset", "x",
                                                         "'x' does not match '^[0-9]*$'")),
                           ("offset=%0A", "Invalid input received: offset must be an integer"),
                           ("marker=nope", "marker [nope] not found"),
                           ("marker=&marker=nope", "marker [nope] not found"),
                           ("marker=", "marker [] not found")]:
        assert_error(dialect_of(kind), get(world, kind, f"/images?{query}"), 400,
                     nova_message=message)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_nova_filters(world, imgs, kind):
    order = [i.id for i in newest_first(imgs)]
    assert ids(get(world, kind, "/images?name=debian")) == ["deb-12"]
    assert ids(get(world, kind, "/images/detail?name=with%20space")) == ["img.3"]
    assert ids(get(world, kind, "/images?name=Debian")) == []
    assert ids(get(world, kind, "/images?status=ACTIVE")) == order
    assert ids(get(world, kind, "/images/detail?status=active")) == order
    assert ids(get(world, kind, "/images?status=SAVING")) == []
    # Nova ignores the keys it does not know
    assert ids(get(world, kind, "/images?colour=red&sort_key=name")) == order


# -- Glance v2 ---------------------------------------------------------------------------------

def expected_glance(img):
    return {"name": img.name, "disk_format": img.disk_format, "container_format": "bare",
            "visibility": "public", "size": img.size, "virtual_size": img.virtual_size,
            "status": "active", "checksum": img.md5, "protected": False, "min_ram": 0,
            "min_disk": 0, "owner": None, "os_hidden": False, "os_hash_algo": "sha512",
            "os_hash_value": img.sha512, "id": img.id, "tags": [],
            "self": f"/v2/images/{img.id}", "file": f"/v2/images/{img.id}/file",
            "schema": "/v2/schemas/image"}


def check_glance(got, img):
    assert list(got) == GLANCE_KEYS, list(got)
    assert ISO_Z.match(got.pop("created_at")) and ISO_Z.match(got.pop("updated_at")), got
    assert got == {k: v for k, v in expected_glance(img).items()
                   if k not in ("created_at", "updated_at")}


@pytest.mark.parametrize("tail,status", [("", 300), ("/", 300), ("/versions", 200),
                                         ("/v2", 300), ("/v2/", 300)])
def test_glance_version_discovery(world, tail, status):
    """Glance's root answers 300 Multiple Choices; no credentials needed."""
    r = glance(world, tail, who=world.anon)
    assert r.status_code == status, r.text
    assert r.json() == {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
        {"rel": "self", "href": f"{world.base}/image/v2/"}]}]}


def test_glance_list_shape(world, imgs):
    r = glance(world, "/v2/images")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["images", "first", "schema"], r.text
    assert (body["first"], body["schema"]) == ("/v2/images", "/v2/schemas/images")
    for got, img in zip(body["images"], newest_first(imgs), strict=True):
        check_glance(got, img)


def test_glance_show_shape(world, imgs):
    for img in imgs:
        r = glance(world, f"/v2/images/{img.id}")
        assert r.status_code == 200, r.text
        check_glance(r.json(), img)
    assert r.headers["Content-Type"] == "application/json"
    assert "OpenStack-API-Version" not in r.headers


@pytest.mark.skipif(not HAVE_QEMU_IMG, reason="qemu-img is not installed")
def test_glance_qcow2_has_its_virtual_size(world, imgs):
    got = glance(world, "/v2/images/deb-12").json()
    assert (got["disk_format"], got["virtual_size"]) == ("qcow2", 64 << 20)
    assert got["size"] < got["virtual_size"]


def test_glance_unknown_image_is_404(world, imgs):
    for image_id in ("nope", "debian", "70a599e0-31e7-49b7-b260-868f441e862b"):
        assert_glance_error(glance(world, f"/v2/images/{image_id}"), 404, "Not Found",
                            f"No image found with ID {image_id}")
    for tail in ("/v2/nothing", "/v2/images/deb-12/file", "/v1/images", "/v3/images",
                 "/v2/schemas/image"):
        assert_glance_error(glance(world, tail), 404, "Not Found",
                            "The resource could not be found.")


def test_glance_filters(world, imgs):
    order = [i.id for i in newest_first(imgs)]
    for query, want in [("name=cirros", [imgs[0].id]), ("name=with+space", ["img.3"]),
                        ("name=CIRROS", []), ("name=", []), ("id=deb-12", ["deb-12"]),
                        ("status=active", order), ("status=queued", []),
                        ("visibility=public", order), ("visibility=all", order),
                        ("visibility=private", []), ("disk_format=raw",
                                                     [i.id for i in newest_first(imgs)
                                                      if i.disk_format == "raw"]),
                        (f"checksum={imgs[0].md5}", [imgs[0].id]),
                        ("os_hidden=false", order), ("os_hidden=True", []),
                        ("protected=False", order),
                        # Glance takes any other key for a property filter: none has it
                        ("colour=red", []), ("name=cirros&colour=red", []),
                        ("sort_key=name&sort_dir=asc", order)]:
        assert ids(glance(world, f"/v2/images?{query}")) == want, query


def test_glance_paging(world, imgs):
    order = [i.id for i in newest_first(imgs)]
    r = glance(world, "/v2/images?limit=2&name=cirros")
    assert ids(r) == [imgs[0].id]
    assert "next" not in r.json()
    r = glance(world, "/v2/images?limit=2")
    assert ids(r) == order[:2]
    body = r.json()
    assert (body["first"], body["next"]) == ("/v2/images?limit=2",
                                             f"/v2/images?limit=2&marker={order[1]}")
    r = glance(world, f"/v2/images?marker={order[0]}&limit=1&sort_dir=desc")
    assert ids(r) == order[1:2]
    assert r.json()["first"] == "/v2/images?limit=1&sort_dir=desc"
    assert r.json()["next"] == f"/v2/images?limit=1&sort_dir=desc&marker={order[1]}"
    # Glance's dict(params): a repeated name at its first place, with its last value
    r = glance(world, f"/v2/images?limit=1&sort_dir=asc&marker={order[0]}&limit=2&sort_dir=desc")
    assert r.json()["first"] == "/v2/images?limit=2&sort_dir=desc"
    # Glance: a page as long as the limit has a next link, even the last one
    r = glance(world, f"/v2/images?limit=1&marker={order[1]}")
    assert ids(r) == order[2:] and r.json()["next"].endswith(f"marker={order[2]}")
    r = glance(world, f"/v2/images?limit=1&marker={order[2]}")
    assert ids(r) == [] and "next" not in r.json()
    assert ids(glance(world, "/v2/images?limit=0")) == []
    assert ids(glance(world, "/v2/images?limit=99999999999999999999999")) == order


def test_glance_bad_paging_is_400(world, imgs):
    for query, message in [("limit=-1", "limit param must be positive"),
                           ("limit=ten", "limit param must be an integer"),
                           ("limit=", "limit param must be an integer"),
                           ("marker=nope", "No image found with ID nope"),
                           ("marker=nope&marker=", "No image found with ID nope"),   # the first
                           ("marker=%FF", "No image found with ID \ufffd")]:
        assert_glance_error(glance(world, f"/v2/images?{query}"), 400, "Bad Request", message)


def test_glance_default_page_is_25(tmp_path):
    """Glance's limit_param_default: 25 without a limit, and a next link."""
    d = Attachd(tmp_path)
    account = d.add_account()
    s = d.session(*d.add_user(account))
    made = [add_image(d, str(tmp_path), f"img-{i:02}", 512).id for i in range(27)]
    d.start()
    try:
        r = s.get(d.url("/image/v2/images"))
        assert ids(r) == made[::-1][:25]
        assert r.json()["next"] == f"/v2/images?marker={made[2]}"
        assert ids(s.get(d.url(f"/image/v2/images?marker={made[2]}"))) == made[1::-1]
        assert len(ids(s.get(d.url("/v2.1/images")))) == 27
    finally:
        assert d.stop() == 0, d.read_log()


def test_no_images(tmp_path):
    d = Attachd(tmp_path)
    s = d.session(*d.add_user(d.add_account()))
    d.start()
    try:
        assert s.get(d.url("/image/v2/images")).json() == {
            "images": [], "first": "/v2/images", "schema": "/v2/schemas/images"}
        assert s.get(d.url("/v2.1/images/detail")).json() == {"images": []}
        assert s.get(d.url("/images")).json() == {"images": []}
    finally:
        assert d.stop() == 0, d.read_log()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("tail", ["/image/v2/images", "/image/v2/images/deb-12",
                                  "/v2.1/images", "/v2.1/images/deb-12", "/images/detail",
                                  "/accounts/{a}/flexcloud/images/deb-12"])
def test_no_write_side(world, imgs, method, tail):
    for who in (world.sa, world.admin):
        r = who.request(method, world.base + tail.format(a=world.a), json={"name": "x"})
        assert r.status_code == 405, r.text
        assert_request_ids(r)
        if method != "PATCH":
            assert r.headers["Allow"] == "GET, HEAD"
        if tail.startswith("/image/"):
            assert r.json()["code"] == "405 Method Not Allowed"
    assert ids(glance(world, "/v2/images?name=x")) == []


# -- hostile input ------------------------------------------------------------------------

HOSTILE_IDS = ["%FF", "%00", "..", "%2e%2e", "a%2Fb", "x" * 256, "x" * 4000, "%E2%98%83",
               "deb-12%00", "'%20OR%201=1", "%22", "%5C"]


@pytest.mark.parametrize("image_id", HOSTILE_IDS)
def test_hostile_ids_are_404(world, imgs, image_id):
    """Sent as they are (a raw connection: no client normalises the path)."""
    auth = [("Authorization", basic(world.a_user, world.a_pw))]
    for path in (f"/v2.1/images/{image_id}", f"/images/{image_id}",
                 f"/image/v2/images/{image_id}"):
        with Conn(world.d.port) as c:
            r = RawAsRequests(c.request("GET", path, headers=auth))
        assert r.status_code in (404, 414), (path, r.status_code, r.text)
        assert_request_ids(r)
        if r.status_code == 404 and path.startswith("/image/"):
            assert r.json()["code"] == "404 Not Found"


@pytest.mark.parametrize("query", [
    "limit=%FF", "marker=%00", "name=%FF%FE", "%FF=1", "limit=1&limit=x", "limit=1e3",
    "limit=0x10", "limit=" + "9" * 5000, "marker=" + "m" * 3000, "a=" + "&a=".join("x" * 200),
    "name", "=", "&&&", "status=%00", "visibility=", "sort_key=%FF"])
def test_hostile_queries_are_answered(world, imgs, query):
    for path in ("/v2.1/images", "/v2.1/images/detail", "/images", "/image/v2/images"):
        r = world.sa.get(f"{world.base}{path}?{query}")
        assert r.status_code in (200, 400, 414), (path, query, r.status_code, r.text)
        assert_request_ids(r)
        assert_json(r)
        if r.status_code == 200:
            body = r.json()
            for key in ("next", "first"):
                if key in body:
                    assert body[key].startswith("/v2/images"), body[key]
                    urllib.parse.urlsplit(body[key])


# -- real clients ---------------------------------------------------------------------------

def clouds_yaml(world, tmp_path, image_endpoint):
    conf = tmp_path / "clouds.yaml"
    conf.write_text("clouds:\n  attachd:\n    auth_type: http_basic\n    auth:\n"
                    f"      username: {world.a_user}\n      password: {world.a_pw}\n"
                    f"      endpoint: {world.base}/v2.1\n"
                    f"    image_endpoint_override: {image_endpoint}\n")
    return conf


@pytest.mark.parametrize("endpoint", ["/image", "/image/", "/image/v2"])
def test_openstack_cli_lists_and_shows_images(world, imgs, tmp_path, endpoint):
    conf = clouds_yaml(world, tmp_path, world.base + endpoint)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "OS_CLIENT_CONFIG_FILE": str(conf), "OS_CLOUD": "attachd"}

    def openstack(*args, ok=True):
        p = subprocess.run([sys.executable, "-m", "openstackclient.shell", *args],
                           env=env, capture_output=True, text=True, timeout=180)
        assert (p.returncode == 0) == ok, (args, p.stdout, p.stderr)
        return p

    listed = json.loads(openstack("image", "list", "-f", "json").stdout)
    # the CLI sorts by name itself
    assert [(i["ID"], i["Name"], i["Status"]) for i in listed] == \
        sorted(((i.id, i.name, "active") for i in imgs), key=lambda t: t[1])
    listed = json.loads(openstack("image", "list", "--name", "debian", "-f", "json").stdout)
    assert [i["ID"] for i in listed] == ["deb-12"]
    for ref, img in (("cirros", imgs[0]), (imgs[0].id, imgs[0]), ("debian", imgs[1]),
                     ("with space", imgs[2])):
        shown = json.loads(openstack("image", "show", ref, "-f", "json").stdout)
        assert (shown["id"], shown["name"], shown["checksum"], shown["size"],
                shown["disk_format"], shown["visibility"], shown["status"]) == \
            (img.id, img.name, img.md5, img.size, img.disk_format, "public", "active")
    p = openstack("image", "show", "no-such-image", ok=False)
    assert "No Image found for no-such-image" in p.stderr


@pytest.mark.parametrize("version", [None, "2.1", "2.35"])
def test_openstacksdk_finds_an_image_by_name(world, imgs, version):
    import openstack
    kwargs = {"compute_api_version": version} if version else {}
    conn = openstack.connect(
        auth_type="http_basic",
        auth={"username": world.a_user, "password": world.a_pw,
              "endpoint": world.base + "/v2.1"},
        image_endpoint_override=world.base + "/image",
        load_yaml_config=False, load_envvars=False, **kwargs)
    i = conn.image.find_image("cirros", ignore_missing=False)
    assert (i.id, i.name, i.checksum, i.size, i.hash_algo, i.hash_value) == \
        (imgs[0].id, "cirros", imgs[0].md5, imgs[0].size, "sha512", imgs[0].sha512)
    assert conn.image.find_image("deb-12", ignore_missing=False).name == "debian"
    assert conn.image.find_image("no-such-image") is None
    assert conn.image.get_image("img.3").name == "with space"
    assert [x.name for x in conn.image.images()] == [i.name for i in newest_first(imgs)]
    assert [x.name for x in conn.image.images(limit=1)] == [i.name for i in newest_first(imgs)]
    c = conn.compute.find_image("debian", ignore_missing=False)
    assert (c.id, c.name) == ("deb-12", "debian")
    c = conn.compute.get_image("deb-12")
    assert (c.name, c.status, c.size, c.min_disk, c.min_ram, c.progress) == \
        ("debian", "ACTIVE", imgs[1].size, 0, 0, 100)
    assert conn.compute.find_image("no-such-image") is None
    assert [x.id for x in conn.compute.images()] == [i.id for i in newest_first(imgs)]
