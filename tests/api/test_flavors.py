"""Flavors: Nova's read-only flavor API in both dialects (issue 9, item 1).

GET /flavors, /flavors/detail and /flavors/{flavor_id} serve the flavors
servers are made with: the configuration's [flavor ID] sections, or Nova's
classic set (m1.tiny to m1.xlarge, ids 1 to 5) when it has none. Bodies are
Nova's (nova/api/openstack/compute/views/flavors.py), key order included,
with the fields each microversion shows; the filters (is_public for admins,
minRam, minDisk), sort_key/sort_dir, limit/marker paging and their 400s are
Nova's too; an unknown flavor is 404 in the dialect's shape; there is no
write side (405 with Allow, as every read-only path of the router). Clients
that resolve a flavor by name (openstacksdk's find_flavor, the `openstack`
CLI's server create --flavor NAME, Ansible's openstack.cloud collection)
find it.
"""
import urllib.parse

import pytest

from apiutil import (PREFIX_KINDS, assert_error, assert_hostway_error, assert_json,
                     assert_nova_error, assert_request_ids, assert_unauthorized, dialect_of,
                     ordered, prefix)
from attachd import Attachd

CLASSIC = [("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20),
           ("3", "m1.medium", 2, 4096, 40), ("4", "m1.large", 4, 8192, 80),
           ("5", "m1.xlarge", 8, 16384, 160)]

DETAIL_KEYS_21 = ["id", "name", "ram", "disk", "swap", "OS-FLV-EXT-DATA:ephemeral",
                  "OS-FLV-DISABLED:disabled", "vcpus", "os-flavor-access:is_public",
                  "rxtx_factor", "links"]


def mv(version):
    return {"OpenStack-API-Version": f"compute {version}"} if version else {}


def at_least(version, minor):
    return version is not None and int(version.split(".")[1]) >= minor


def nova_links(world, kind, fid):
    pfx = prefix(kind, world.a)
    bookmark = f"/{world.a}" if kind == "nova-proj" else ""
    return [("rel", "self"), ("href", f"{world.base}{pfx}/flavors/{fid}")], \
           [("rel", "bookmark"), ("href", f"{world.base}{bookmark}/flavors/{fid}")]


def expected_links(world, kind, fid):
    if dialect_of(kind) == "hostway":
        return [[("href", f"{world.base}{prefix(kind, world.a)}/flavors/{fid}"), ("rel", "self")]]
    return list(nova_links(world, kind, fid))


def expected_detail(world, kind, flavor, version):
    fid, name, vcpus, ram, disk = flavor
    swap = 0 if at_least(version, 75) else ""
    o = [("id", fid), ("name", name), ("ram", ram), ("disk", disk), ("swap", swap),
         ("OS-FLV-EXT-DATA:ephemeral", 0), ("OS-FLV-DISABLED:disabled", False),
         ("vcpus", vcpus), ("os-flavor-access:is_public", True), ("rxtx_factor", 1.0),
         ("links", expected_links(world, kind, fid))]
    if at_least(version, 55):
        o.append(("description", None))
    if at_least(version, 61):
        o.append(("extra_specs", []))       # {} as ordered() parses it
    return o


def expected_brief(world, kind, flavor, version):
    fid, name = flavor[:2]
    o = [("id", fid), ("name", name), ("links", expected_links(world, kind, fid))]
    if at_least(version, 55):
        o.append(("description", None))
    return o


def get(world, kind, tail, version=None, who=None):
    s = who or world.sa
    r = s.get(f"{world.base}{prefix(kind, world.a)}{tail}",
              headers=mv(version) if dialect_of(kind) == "nova" else {})
    assert_request_ids(r)
    return r


def ids(r):
    assert r.status_code == 200, (r.status_code, r.text)
    return [f["id"] for f in assert_json(r)["flavors"]]


# -- shapes -----------------------------------------------------------------------------

VERSIONS = [None, "2.54", "2.55", "2.60", "2.61", "2.74", "2.75", "2.89"]
# the Hostway dialect has no microversions: its bodies are 2.1's
SHAPES = [(k, v) for k in PREFIX_KINDS for v in (VERSIONS if k.startswith("nova") else [None])]


@pytest.mark.parametrize("kind,version", SHAPES)
def test_list_shape(world, kind, version):
    r = get(world, kind, "/flavors", version)
    assert r.status_code == 200, r.text
    assert_json(r)
    body = ordered(r.text)
    assert [k for k, _ in body] == ["flavors"], r.text
    assert body[0][1] == [expected_brief(world, kind, f, version) for f in CLASSIC]
    if dialect_of(kind) == "nova":
        assert r.headers["OpenStack-API-Version"] == f"compute {version or '2.1'}"


@pytest.mark.parametrize("kind,version", SHAPES)
def test_detail_shape(world, kind, version):
    r = get(world, kind, "/flavors/detail", version)
    assert r.status_code == 200, r.text
    body = ordered(r.text)
    assert [k for k, _ in body] == ["flavors"], r.text
    assert body[0][1] == [expected_detail(world, kind, f, version) for f in CLASSIC]
    assert '"rxtx_factor":1.0' in r.text.replace(" ", "")     # a float, as Nova's


@pytest.mark.parametrize("kind,version", SHAPES)
def test_show_shape(world, kind, version):
    for flavor in CLASSIC:
        r = get(world, kind, f"/flavors/{flavor[0]}", version)
        assert r.status_code == 200, r.text
        assert ordered(r.text) == [("flavor", expected_detail(world, kind, flavor, version))]


def test_detail_keys_in_novas_order(world):
    r = get(world, "nova", "/flavors/1")
    assert [k for k, _ in ordered(r.text)[0][1]] == DETAIL_KEYS_21
    r = get(world, "nova", "/flavors/1", "2.89")
    assert [k for k, _ in ordered(r.text)[0][1]] == DETAIL_KEYS_21 + ["description",
                                                                       "extra_specs"]
    assert r.json()["flavor"]["swap"] == 0 and r.json()["flavor"]["extra_specs"] == {}


def test_any_authenticated_user_reads_flavors(world):
    for who in (world.sa, world.sb, world.admin):
        assert ids(who.get(f"{world.base}/v2.1/flavors")) == ["1", "2", "3", "4", "5"]
    for tail in ("/flavors", "/flavors/detail", "/flavors/1"):
        assert_unauthorized(world.anon.get(f"{world.base}/v2.1{tail}"))
        assert_unauthorized(world.anon.get(f"{world.base}{tail}"))


def test_head_answers_as_get(world):
    r = world.sa.head(f"{world.base}/v2.1/flavors/2")
    assert r.status_code == 200 and r.content == b""


# -- not found, no writes ------------------------------------------------------------------

@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_unknown_flavor_is_404_in_dialect(world, kind):
    for fid in ("99", "m1.tiny", "0"):
        r = get(world, kind, f"/flavors/{fid}")
        if dialect_of(kind) == "nova":
            assert_nova_error(r, 404, "itemNotFound", f"Flavor {fid} could not be found.")
        else:
            assert_hostway_error(r, 404, "itemNotFound", "Resource not found", "")


def test_another_accounts_prefix_is_404(world):
    r = world.sa.get(f"{world.base}/v2.1/{world.b}/flavors")
    assert_nova_error(r, 404, "itemNotFound")
    r = world.admin.get(f"{world.base}/v2.1/{world.b}/flavors/1")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("method,tail", [("POST", "/flavors"), ("PUT", "/flavors"),
                                         ("DELETE", "/flavors"), ("POST", "/flavors/1"),
                                         ("PUT", "/flavors/1"), ("DELETE", "/flavors/1"),
                                         ("POST", "/flavors/detail")])
def test_no_write_side(world, kind, method, tail):
    body = {"flavor": {"name": "new", "ram": 1, "vcpus": 1, "disk": 0}}
    for who in (world.sa, world.admin):
        r = who.request(method, f"{world.base}{prefix(kind, world.a)}{tail}", json=body)
        assert_error(dialect_of(kind), r, 405)
        assert r.headers["Allow"] == "GET, HEAD"
    assert ids(world.sa.get(f"{world.base}/v2.1/flavors")) == ["1", "2", "3", "4", "5"]


# -- filters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_min_ram_and_min_disk(world, kind):
    assert ids(get(world, kind, "/flavors?minRam=4096")) == ["3", "4", "5"]
    assert ids(get(world, kind, "/flavors/detail?minDisk=80")) == ["4", "5"]
    assert ids(get(world, kind, "/flavors?minRam=2048&minDisk=41")) == ["4", "5"]
    assert ids(get(world, kind, "/flavors?minRam=-5&minDisk=0")) == ["1", "2", "3", "4", "5"]
    # Python's int(): white space, a sign, underscores between digits
    assert ids(get(world, kind, "/flavors?minRam=%2016_384%20")) == ["5"]
    assert ids(get(world, kind, "/flavors?minRam=+8192")) == ["4", "5"]
    assert ids(get(world, kind, "/flavors?minRam=99999999999999999999999")) == []


@pytest.mark.parametrize("name,value", [("minRam", "abc"), ("minRam", "1.5"), ("minRam", ""),
                                        ("minDisk", "1_"), ("minDisk", "ten"),
                                        ("minDisk", "--1")])
@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_invalid_min_filters_are_400(world, kind, name, value):
    r = get(world, kind, f"/flavors/detail?{name}={urllib.parse.quote(value)}")
    assert_error(dialect_of(kind), r, 400, nova_message=f"Invalid {name} filter [{value}]")
    if dialect_of(kind) == "hostway":
        assert r.json()["badRequest"]["details"] == f"Invalid {name} filter [{value}]"


@pytest.mark.parametrize("value,listed", [
    ("true", True), ("TRUE", True), ("yes", True), ("1", True), ("on", True), ("t", True),
    ("false", False), ("False", False), ("no", False), ("0", False), ("off", False),
    ("none", True), ("None", True), ("NONE", True),
])
def test_is_public_for_an_admin(world, value, listed):
    """An admin's is_public: true (the default) and none (all) list every
    flavor, false lists none (every flavor is public)."""
    want = ["1", "2", "3", "4", "5"] if listed else []
    for tail in ("/flavors", "/flavors/detail"):
        assert ids(get(world, "nova", f"{tail}?is_public={value}", who=world.admin)) == want
        assert ids(get(world, "hostway", f"{tail}?is_public={value}", who=world.admin)) == want


@pytest.mark.parametrize("value", ["maybe", "", "nil", "2"])
def test_invalid_is_public_is_400_for_an_admin(world, value):
    for kind in ("nova", "hostway"):
        r = get(world, kind, f"/flavors/detail?is_public={value}", who=world.admin)
        assert_error(dialect_of(kind), r, 400, nova_message=f"Invalid is_public filter [{value}]")


def test_is_public_is_ignored_for_other_users(world):
    """Nova parses is_public for admins only; everybody else sees the public
    flavors, whatever is asked (so Ansible's is_public=None works for a member)."""
    for value in ("None", "false", "maybe"):
        assert ids(get(world, "nova", f"/flavors/detail?is_public={value}")) == \
            ["1", "2", "3", "4", "5"]


def test_ansibles_calls(world):
    """openstack.cloud's server_volume asks for these two after an attach."""
    r = get(world, "nova", "/flavors/1", "2.53")
    assert r.status_code == 200 and r.json()["flavor"]["name"] == "m1.tiny"
    r = get(world, "nova", "/flavors/detail?is_public=None", "2.53")
    assert [f["name"] for f in r.json()["flavors"]] == [f[1] for f in CLASSIC]


def test_unknown_parameters_are_400_from_2_75(world):
    for version in (None, "2.74"):
        assert ids(get(world, "nova", "/flavors?colour=red&minRam=8192", version)) == ["4", "5"]
    for tail in ("/flavors?colour=red", "/flavors/detail?limit=1&colour=red"):
        assert_nova_error(get(world, "nova", tail, "2.75"), 400, "badRequest",
                          "Additional properties are not allowed ('colour' was unexpected)")
    # show takes any query, as Nova's
    assert get(world, "nova", "/flavors/1?colour=red", "2.89").status_code == 200


# -- sorting and paging ---------------------------------------------------------------------

@pytest.mark.parametrize("query,want", [
    ("sort_dir=desc", ["5", "4", "3", "2", "1"]),
    ("sort_key=name", ["4", "3", "2", "1", "5"]),
    ("sort_key=name&sort_dir=desc", ["5", "1", "2", "3", "4"]),
    ("sort_key=memory_mb&sort_dir=desc", ["5", "4", "3", "2", "1"]),
    ("sort_key=vcpus&sort_dir=asc", ["1", "2", "3", "4", "5"]),
    ("sort_key=vcpus&sort_dir=desc", ["5", "4", "3", "2", "1"]),
    ("sort_key=root_gb", ["1", "2", "3", "4", "5"]),
    ("sort_key=created_at&sort_dir=desc", ["5", "4", "3", "2", "1"]),
    ("sort_key=id", ["1", "2", "3", "4", "5"]),
])
def test_sort(world, query, want):
    assert ids(get(world, "nova", f"/flavors?{query}")) == want
    assert ids(get(world, "hostway", f"/flavors/detail?{query}")) == want


@pytest.mark.parametrize("name,value,allowed", [
    ("sort_key", "ram", "['created_at', 'description', 'disabled', 'ephemeral_gb', 'flavorid', "
                        "'id', 'is_public', 'memory_mb', 'name', 'root_gb', 'rxtx_factor', "
                        "'swap', 'updated_at', 'vcpu_weight', 'vcpus']"),
    ("sort_dir", "up", "['asc', 'desc']"),
    ("sort_dir", "ASC", "['asc', 'desc']"),
])
def test_invalid_sort_is_400(world, name, value, allowed):
    r = get(world, "nova", f"/flavors?{name}={value}")
    assert_nova_error(r, 400, "badRequest",
                      f"Invalid input for query parameters {name}. Value: {value}. "
                      f"'{value}' is not one of {allowed}")


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_paging(world, kind):
    pfx = prefix(kind, world.a)
    r = get(world, kind, "/flavors?limit=2")
    assert ids(r) == ["1", "2"]
    assert r.json()["flavors_links"] == [
        {"rel": "next", "href": f"{world.base}{pfx}/flavors?limit=2&marker=2"}]
    r = get(world, kind, "/flavors/detail?marker=2&limit=2&minRam=1")
    assert ids(r) == ["3", "4"]
    assert r.json()["flavors_links"] == [
        {"rel": "next", "href": f"{world.base}{pfx}/flavors/detail?limit=2&marker=4&minRam=1"}]
    r = get(world, kind, "/flavors?marker=4&limit=2")
    assert ids(r) == ["5"] and "flavors_links" not in r.json()
    r = get(world, kind, "/flavors?marker=5")
    assert ids(r) == [] and "flavors_links" not in r.json()
    # the marker need not pass the filters: paging goes on after it
    assert ids(get(world, kind, "/flavors?marker=1&minRam=4096")) == ["3", "4", "5"]
    # limit 0 is an empty page; above 1000 is 1000; no limit: no next link
    r = get(world, kind, "/flavors?limit=0")
    assert ids(r) == [] and "flavors_links" not in r.json()
    assert ids(get(world, kind, "/flavors?limit=00003")) == ["1", "2", "3"]
    r = get(world, kind, "/flavors?limit=99999999999999999999")
    assert len(ids(r)) == 5 and "flavors_links" not in r.json()
    assert "flavors_links" not in get(world, kind, "/flavors").json()


def test_paging_follows_the_sort(world):
    r = get(world, "nova", "/flavors?sort_key=memory_mb&sort_dir=desc&limit=2&marker=4")
    assert ids(r) == ["3", "2"]
    assert r.json()["flavors_links"][0]["href"] == (
        f"{world.base}/v2.1/flavors?limit=2&marker=2&sort_dir=desc&sort_key=memory_mb")
    # Nova's _get_next_link: OrderedDict(sorted(params.items())), then the
    # marker set, in its place if the request had one, else last
    r = get(world, "nova", "/flavors?sort_key=name&limit=1&is_public=none", who=world.admin)
    assert ids(r) == ["4"]
    assert r.json()["flavors_links"][0]["href"] == (
        f"{world.base}/v2.1/flavors?is_public=none&limit=1&sort_key=name&marker=4")


def test_next_link_keeps_the_largest_value_of_a_repeated_name(world):
    """sorted() orders a name's values too, and the dict keeps the last:
    the largest, whatever order they came in."""
    for query in ("b=2&limit=1&b=10&a=x&a=", "a=&a=x&b=10&b=2&limit=1"):
        r = get(world, "nova", f"/flavors?{query}")
        assert r.json()["flavors_links"][0]["href"] == (
            f"{world.base}/v2.1/flavors?a=x&b=2&limit=1&marker=1")


def test_next_link_of_a_long_query_is_whole(world):
    """A query of thousands of names (as many as a request line holds) is
    copied into the next link whole: once each name was looked for among
    the names before it, and the link rebuilt for each, which took some
    70 ms of an HTTP thread for a 13 KB query."""
    names = [f"a{i:04d}" for i in range(2000)]
    r = get(world, "nova", "/flavors?limit=1&" + "&".join(f"{n}=" for n in reversed(names)))
    href = r.json()["flavors_links"][0]["href"]
    assert href == (f"{world.base}/v2.1/flavors?" + "&".join(f"{n}=" for n in names)
                    + "&limit=1&marker=1")


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_unknown_marker_is_400(world, kind):
    for marker in ("99", "m1.tiny", ""):
        r = get(world, kind, f"/flavors/detail?marker={marker}")
        assert_error(dialect_of(kind), r, 400, nova_message=f"marker [{marker}] not found")


@pytest.mark.parametrize("value,message", [
    ("-1", "'-1' does not match '^[0-9]*$'"),
    ("two", "'two' does not match '^[0-9]*$'"),
    ("1.0", "'1.0' does not match '^[0-9]*$'"),
    ("", "'' is too short"),
])
def test_invalid_limit_is_400(world, value, message):
    r = get(world, "nova", f"/flavors?limit={value}")
    assert_nova_error(r, 400, "badRequest",
                      f"Invalid input for query parameters limit. Value: {value}. {message}")
    assert_error("hostway", get(world, "hostway", f"/flavors/detail?limit={value}"), 400)


def test_a_limit_with_a_last_newline(world):
    """Nova's pattern '^[0-9]*$' lets a last newline by (Python's `$`),
    and Python's int() then reads the number before it: a newline alone
    is 400 from get_limit_and_marker(), after the rest of the schema."""
    assert ids(get(world, "nova", "/flavors?limit=1%0A")) == ["1"]
    for query in ("limit=%0A", "limit=%0A&sort_dir=asc"):
        assert_nova_error(get(world, "nova", f"/flavors?{query}"), 400, "badRequest",
                          "Invalid input received: limit must be an integer")
    r = get(world, "nova", "/flavors?limit=%0A&sort_dir=up")
    assert_nova_error(r, 400, "badRequest", "Invalid input for query parameters sort_dir. "
                      "Value: up. 'up' is not one of ['asc', 'desc']")


def test_every_limit_is_checked_and_the_last_counts(world):
    r = get(world, "nova", "/flavors?limit=x&limit=2")
    assert_nova_error(r, 400, "badRequest", "Invalid input for query parameters limit. "
                      "Value: x. 'x' does not match '^[0-9]*$'")
    assert ids(get(world, "nova", "/flavors?limit=1&limit=2")) == ["1", "2"]
    r = get(world, "nova", "/flavors?sort_key=ram&sort_key=name")
    assert_nova_error(r, 400, "badRequest", "Invalid input for query parameters sort_key. "
                      "Value: ram. 'ram' is not one of " + str(sorted(
                          ["created_at", "description", "disabled", "ephemeral_gb", "flavorid",
                           "id", "is_public", "memory_mb", "name", "root_gb", "rxtx_factor",
                           "swap", "updated_at", "vcpu_weight", "vcpus"])))
    assert ids(get(world, "nova", "/flavors?sort_dir=asc&sort_dir=desc&limit=1")) == ["5"]


# -- a configured set ---------------------------------------------------------------------------

CONFIGURED = ("[flavor gp.small]\nname = gp.small\nvcpus = 2\nram_mb = 1024\ndisk_gb = 10\n"
              "[flavor 7]\nname = big\nvcpus = 8\nram_mb = 32768\ndisk_gb = 0\n"
              "[flavor 10]\nname = tiny\nvcpus = 1\nram_mb = 256\ndisk_gb = 1\n")


def test_configured_flavors_are_served(tmp_path):
    conf = tmp_path / "f.conf"
    conf.write_text(CONFIGURED)
    d = Attachd(tmp_path, extra_args=["--config", str(conf)])
    account = d.add_account()
    s = d.session(*d.add_user(account), microversion="2.61")
    d.start()
    try:
        r = s.get(d.url("/v2.1/flavors/detail"))
        assert r.status_code == 200, r.text
        # Nova's default order: by id, as text
        assert [(f["id"], f["name"], f["vcpus"], f["ram"], f["disk"]) for f in
                r.json()["flavors"]] == [("10", "tiny", 1, 256, 1), ("7", "big", 8, 32768, 0),
                                         ("gp.small", "gp.small", 2, 1024, 10)]
        # the configuration's order is the row id's
        assert ids(s.get(d.url("/v2.1/flavors?sort_key=id"))) == ["gp.small", "7", "10"]
        f = s.get(d.url("/v2.1/flavors/gp.small")).json()["flavor"]
        assert (f["name"], f["vcpus"], f["ram"], f["disk"], f["swap"], f["extra_specs"]) == \
            ("gp.small", 2, 1024, 10, "", {})
        assert f["links"][0]["href"] == d.url("/v2.1/flavors/gp.small")
        assert s.get(d.url(f"/accounts/{account}/flexcloud/flavors/7")).json()["flavor"][
            "name"] == "big"
        # the classic set is gone
        assert_nova_error(s.get(d.url("/v2.1/flavors/1")), 404, "itemNotFound",
                          "Flavor 1 could not be found.")
        assert ids(s.get(d.url("/flavors?minRam=1024&limit=1"))) == ["7"]
        assert ids(s.get(d.url("/flavors?marker=7"))) == ["gp.small"]
        # and a server made with a configured flavor names it
        r = s.post(d.url("/v2.1/servers"), json={"server": {
            "name": "x", "imageRef": "img", "flavorRef": "7", "networks": "none"}})
        assert r.status_code == 202, r.text
    finally:
        assert d.stop() == 0, d.read_log()


# -- a real client ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [None, "2.1", "2.61", "2.89"])
def test_openstacksdk_finds_a_flavor_by_name(world, version):
    import openstack
    kwargs = {"compute_api_version": version} if version else {}
    conn = openstack.connect(
        auth_type="http_basic",
        auth={"username": world.a_user, "password": world.a_pw,
              "endpoint": world.base + "/v2.1"},
        load_yaml_config=False, load_envvars=False, **kwargs)
    f = conn.compute.find_flavor("m1.small", ignore_missing=False)
    assert (f.id, f.name, f.vcpus, f.ram, f.disk) == ("2", "m1.small", 1, 2048, 20)
    assert conn.compute.find_flavor("3", ignore_missing=False).name == "m1.medium"
    assert conn.compute.find_flavor("m1.huge") is None
    assert conn.compute.get_flavor("5").name == "m1.xlarge"
    assert [f.name for f in conn.compute.flavors()] == [c[1] for c in CLASSIC]
    assert [f.id for f in conn.compute.flavors(details=False, min_ram=8192)] == ["4", "5"]


def test_openstack_cli_creates_a_server_by_flavor_name(world, tmp_path):
    """`openstack server create --flavor NAME` resolves the name (booting from
    a volume: attachd serves no images) and `server list` shows it."""
    import json
    import subprocess
    import sys
    vid = world.d.add_volume(world.a, name="flavor-boot")
    conf = tmp_path / "clouds.yaml"
    conf.write_text("clouds:\n  attachd:\n    auth_type: http_basic\n    auth:\n"
                    f"      username: {world.a_user}\n      password: {world.a_pw}\n"
                    f"      endpoint: {world.base}/v2.1\n"
                    f"    block_storage_endpoint_override: {world.base}/v3/{world.a}\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "OS_CLIENT_CONFIG_FILE": str(conf), "OS_CLOUD": "attachd"}

    def openstack(*args):
        p = subprocess.run([sys.executable, "-m", "openstackclient.shell", *args, "-f", "json"],
                           env=env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return json.loads(p.stdout)

    made = openstack("server", "create", "--os-compute-api-version", "2.37", "--flavor",
                     "m1.medium", "--volume", vid, "--nic", "none", "by-flavor-name")
    assert made["flavor"] == "m1.medium (3)", made
    shown = world.sa.get(f"{world.base}/v2.1/servers/{made['id']}",
                         headers=mv("2.47")).json()["server"]["flavor"]
    assert (shown["original_name"], shown["vcpus"], shown["ram"]) == ("m1.medium", 2, 4096)
    listed = openstack("server", "list", "--long", "--name", "by-flavor-name")
    assert [(s["Flavor Name"], s["Flavor ID"]) for s in listed] == [("m1.medium", "3")]


# -- extra specs (issue 9) ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_extra_specs_are_empty(world, kind):
    """GET /flavors/{id}/os-extra_specs: no flavor has any (Nova's
    flavors_extraspecs.py index)."""
    for fid in ("1", "5"):
        for version in ([None, "2.60", "2.89"] if dialect_of(kind) == "nova" else [None]):
            r = get(world, kind, f"/flavors/{fid}/os-extra_specs", version)
            assert r.status_code == 200, r.text
            assert ordered(r.text) == [("extra_specs", [])]


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_an_extra_spec_is_404(world, kind):
    for key in ("hw:cpu_policy", "quota:disk_read_bytes_sec", "x"):
        r = get(world, kind, f"/flavors/2/os-extra_specs/{key}")
        assert_error(dialect_of(kind), r, 404,
                     nova_message=f"Flavor 2 has no extra specs with key {key}.")


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_extra_specs_of_an_unknown_flavor_are_404(world, kind):
    for tail in ("/flavors/99/os-extra_specs", "/flavors/m1.tiny/os-extra_specs/hw:x"):
        fid = tail.split("/")[2]
        r = get(world, kind, tail)
        assert_error(dialect_of(kind), r, 404, nova_message=f"Flavor {fid} could not be found.")


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("method,tail", [("POST", "/flavors/1/os-extra_specs"),
                                         ("PUT", "/flavors/1/os-extra_specs"),
                                         ("DELETE", "/flavors/1/os-extra_specs"),
                                         ("PUT", "/flavors/1/os-extra_specs/hw:a"),
                                         ("DELETE", "/flavors/1/os-extra_specs/hw:a"),
                                         ("POST", "/flavors/1/os-extra_specs/hw:a")])
def test_extra_specs_have_no_write_side(world, kind, method, tail):
    """Nova lets only admins write extra specs; attachd's flavors are
    configuration: 405, as every read-only path, for admins too."""
    for who in (world.sa, world.admin):
        r = who.request(method, f"{world.base}{prefix(kind, world.a)}{tail}",
                        json={"extra_specs": {"hw:a": "1"}, "hw:a": "1"})
        assert_error(dialect_of(kind), r, 405)
        assert r.headers["Allow"] == "GET, HEAD"
    r = get(world, "nova", "/flavors/1/os-extra_specs")
    assert r.json() == {"extra_specs": {}}


def test_extra_specs_need_credentials(world):
    for tail in ("/flavors/1/os-extra_specs", "/flavors/1/os-extra_specs/k"):
        assert_unauthorized(world.anon.get(f"{world.base}/v2.1{tail}"))
        assert_unauthorized(world.anon.get(f"{world.base}{tail}"))


def openstack_cli(tmp_path, world, *args, extra_conf=""):
    """The real `openstack` CLI against the world's daemon; its JSON output."""
    import json
    import subprocess
    import sys
    conf = tmp_path / "clouds.yaml"
    conf.write_text("clouds:\n  attachd:\n    auth_type: http_basic\n    auth:\n"
                    f"      username: {world.a_user}\n      password: {world.a_pw}\n"
                    f"      endpoint: {world.base}/v2.1\n" + extra_conf)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "OS_CLIENT_CONFIG_FILE": str(conf), "OS_CLOUD": "attachd"}
    p = subprocess.run([sys.executable, "-m", "openstackclient.shell", *args, "-f", "json"],
                       env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return json.loads(p.stdout)


@pytest.mark.parametrize("version", [None, "2.60"])
def test_openstack_cli_lists_and_shows_flavors(world, tmp_path, version):
    """Below 2.61 `flavor list` and `flavor show` read each flavor's
    os-extra_specs (the flavor carries them only from 2.61)."""
    mv_args = ["--os-compute-api-version", version] if version else []
    listed = openstack_cli(tmp_path, world, "flavor", "list", *mv_args)
    assert [(f["ID"], f["Name"], f["VCPUs"], f["RAM"], f["Disk"], f["Is Public"])
            for f in listed] == [(i, n, v, r, d, True) for i, n, v, r, d in CLASSIC]
    listed = openstack_cli(tmp_path, world, "flavor", "list", "--long", *mv_args)
    assert [f["Properties"] for f in listed] == [{}] * 5
    shown = openstack_cli(tmp_path, world, "flavor", "show", "m1.small", *mv_args)
    assert (shown["id"], shown["name"], shown["vcpus"], shown["ram"], shown["disk"],
            shown["properties"]) == ("2", "m1.small", 1, 2048, 20, {})
