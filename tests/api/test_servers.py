"""Servers (docs/api.md, decision D9; issue 2 item 8) in both dialects: create,
list with limit/marker, detail, show, delete, and Nova-like body validation."""
import ast
import datetime
import random
import re
import urllib.parse
import warnings

import pytest

from apiutil import (IMAGE_REF, ISO_Z, PREFIX_KINDS, UUID4, assert_error, assert_json,
                     assert_not_found, assert_request_ids, create_server, dialect_of,
                     get_server, prefix, server_body, unique)

NOVA_FULL_FIELDS = [
    "id", "name", "status", "tenant_id", "user_id", "created", "updated", "hostId",
    "addresses", "accessIPv4", "accessIPv6", "image", "flavor", "links", "metadata",
    "OS-EXT-STS:vm_state", "OS-EXT-STS:task_state", "OS-EXT-STS:power_state",
    "OS-EXT-AZ:availability_zone", "key_name", "os-extended-volumes:volumes_attached",
]


@pytest.fixture
def fresh(world):
    """A new account with a member session: (account, session) with no servers."""
    acct = world.d.add_account()
    user, pw = world.d.add_user(acct)
    return acct, world.d.session(user, pw)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_create_returns_202_location_and_uuid4(world, kind):
    pfx = prefix(kind, world.a)
    r = world.sa.post(f"{world.base}{pfx}/servers", json=server_body(unique("c")))
    assert r.status_code == 202, r.text
    assert_request_ids(r)
    srv = assert_json(r)["server"]
    assert UUID4.match(srv["id"]), srv
    loc = r.headers.get("Location")
    # Hostway's own links end in "/" (Hostway pages: ".../volumes/{id}/"); Nova's do not
    tails = (f"/servers/{srv['id']}",) if dialect_of(kind) == "nova" else \
        (f"/servers/{srv['id']}", f"/servers/{srv['id']}/")
    assert loc and loc.startswith("http://") and loc.endswith(tails), loc
    assert any(l["rel"] == "self" and l["href"].endswith(tails) for l in srv["links"]), srv
    if dialect_of(kind) == "nova":
        assert isinstance(srv.get("adminPass"), str) and srv["adminPass"], srv
        assert srv.get("OS-DCF:diskConfig") == "MANUAL", srv
        assert srv.get("security_groups") == [{"name": "default"}], srv
    # the Location is real
    path = urllib.parse.urlsplit(loc).path
    g = world.sa.get(world.base + path)
    assert g.status_code == 200, (loc, g.text)
    assert g.json()["server"]["id"] == srv["id"]


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_new_server_is_active_and_launched(world, kind):
    pfx = prefix(kind, world.a)
    name = unique("show")
    sid = create_server(world.sa, world.base, pfx, name)
    s = get_server(world.sa, world.base, pfx, sid)
    assert s["id"] == sid and s["name"] == name
    assert s["status"] == "ACTIVE"
    assert s["OS-EXT-STS:vm_state"] == "active"
    assert s["OS-EXT-STS:task_state"] is None
    assert s["OS-EXT-STS:power_state"] == 1
    assert s["os-extended-volumes:volumes_attached"] == []


def test_nova_full_server_fields(world):
    sid = create_server(world.sa, world.base, "/v2.1", unique("full"))
    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}")
    assert r.status_code == 200
    s = assert_json(r)["server"]
    missing = [f for f in NOVA_FULL_FIELDS if f not in s]
    assert not missing, (missing, sorted(s))
    assert s["tenant_id"] == world.a
    assert ISO_Z.match(s["created"]) and ISO_Z.match(s["updated"]), (s["created"], s["updated"])
    assert isinstance(s["addresses"], dict) and isinstance(s["metadata"], dict)
    assert isinstance(s["image"], (dict, str)) and isinstance(s["flavor"], dict)
    rels = {l["rel"]: l["href"] for l in s["links"]}
    assert rels["self"].endswith(f"/servers/{sid}") and "/v2.1/" in rels["self"], rels
    assert rels["bookmark"].endswith(f"/servers/{sid}"), rels


def test_cli_server_is_active_too(world):
    sid = world.d.add_server(world.a, name="from-cli")
    for pfx in ("", "/v2.1"):
        s = get_server(world.sa, world.base, pfx, sid)
        assert s["name"] == "from-cli" and s["status"] == "ACTIVE"
        assert s["OS-EXT-STS:vm_state"] == "active"


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_list_and_detail(world, fresh, kind):
    acct, s = fresh
    pfx = prefix(kind, acct)
    ids = {create_server(s, world.base, pfx, f"l{i}") for i in range(3)}
    r = s.get(f"{world.base}{pfx}/servers")
    assert r.status_code == 200
    body = assert_json(r)
    assert {x["id"] for x in body["servers"]} == ids
    for x in body["servers"]:
        assert any(l["rel"] == "self" for l in x["links"]), x
        if dialect_of(kind) == "nova":
            assert x["name"].startswith("l"), x
    assert "servers_links" not in body, body
    r = s.get(f"{world.base}{pfx}/servers/detail")
    assert r.status_code == 200
    det = assert_json(r)["servers"]
    assert {x["id"] for x in det} == ids
    for x in det:
        assert x["status"] == "ACTIVE"
        assert x["OS-EXT-STS:vm_state"] == "active"
        assert x["os-extended-volumes:volumes_attached"] == []


def test_empty_list(world, fresh):
    acct, s = fresh
    for pfx in ("", "/v2.1", f"/v2.1/{acct}", f"/accounts/{acct}/flexcloud"):
        for tail in ("/servers", "/servers/detail"):
            r = s.get(f"{world.base}{pfx}{tail}")
            assert r.status_code == 200, r.text
            assert assert_json(r)["servers"] == []


def _walk(s, first_url, base):
    seen, url, pages = [], first_url, 0
    while url and pages < 20:
        r = s.get(url)
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        seen += [x["id"] for x in body["servers"]]
        pages += 1
        nxt = [l["href"] for l in body.get("servers_links", []) if l["rel"] == "next"]
        if not nxt or not body["servers"]:
            break
        href = nxt[0]
        parts = urllib.parse.urlsplit(href)
        assert parts.scheme == "http" and parts.netloc, href
        q = urllib.parse.parse_qs(parts.query)
        assert q.get("marker") == [body["servers"][-1]["id"]], href
        assert q.get("limit") == ["2"], href
        url = base + parts.path + "?" + parts.query
    return seen, pages


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_pagination_with_limit_and_marker(world, fresh, kind, tail):
    acct, s = fresh
    pfx = prefix(kind, acct)
    ids = [create_server(s, world.base, pfx, f"p{i}") for i in range(5)]
    r = s.get(f"{world.base}{pfx}{tail}?limit=2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["servers"]) == 2
    links = body.get("servers_links")
    assert links and links[0]["rel"] == "next", body
    assert urllib.parse.urlsplit(links[0]["href"]).path.endswith(tail), links
    seen, pages = _walk(s, f"{world.base}{pfx}{tail}?limit=2", world.base)
    assert sorted(seen) == sorted(ids), (seen, ids)
    assert len(seen) == len(set(seen))
    assert pages == 3


@pytest.mark.parametrize("kind", ["hostway", "nova"])
@pytest.mark.parametrize("query", ["limit=-1", "limit=abc", "limit=1.5", "marker=no-such-marker"])
def test_bad_pagination_parameters_are_400(world, kind, query):
    r = world.sa.get(f"{world.base}{prefix(kind, world.a)}/servers?{query}")
    assert_error(dialect_of(kind), r, 400)


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_pagination_parameters_as_nova_reads_them(world, fresh, kind):
    """Nova's query schema checks every limit given, and webob's req.GET
    gives the last of each parameter: limit, marker, the name filter."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    for i in range(3):
        create_server(s, world.base, "/v2.1", f"paged{i}")
    r = s.get(f"{world.base}{pfx}/servers?limit=1&limit=x")
    assert_error(dialect_of(kind), r, 400, nova_message="Invalid input for query parameters "
                 "limit. Value: x. 'x' does not match '^[0-9]*$'")
    listed = s.get(f"{world.base}{pfx}/servers").json()["servers"]
    assert len(s.get(f"{world.base}{pfx}/servers?limit=1&limit=2").json()["servers"]) == 2
    r = s.get(f"{world.base}{pfx}/servers?marker=no-such&marker={listed[0]['id']}")
    assert [x["id"] for x in r.json()["servers"]] == [x["id"] for x in listed[1:]]
    r = s.get(f"{world.base}{pfx}/servers?name=nothing&name=paged1")
    assert [x["name"] for x in r.json()["servers"]] == ["paged1"]
    # the schema's '^[0-9]*$' lets a last newline by (Python's `$`), and
    # Python's int() reads the number before it; a newline alone is no number
    assert len(s.get(f"{world.base}{pfx}/servers?limit=2%0A").json()["servers"]) == 2
    r = s.get(f"{world.base}{pfx}/servers?limit=%0A")
    assert_error(dialect_of(kind), r, 400,
                 nova_message="Invalid input received: limit must be an integer")
    r = s.get(f"{world.base}{pfx}/servers?limit=1%0A%0A")
    assert_error(dialect_of(kind), r, 400, nova_message="Invalid input for query parameters "
                 "limit. Value: 1\n\n. '1\\n\\n' does not match '^[0-9]*$'")


def test_limit_larger_than_count(world, fresh):
    acct, s = fresh
    ids = {create_server(s, world.base, "/v2.1", f"n{i}") for i in range(2)}
    r = s.get(f"{world.base}/v2.1/servers?limit=50")
    body = r.json()
    assert {x["id"] for x in body["servers"]} == ids
    assert "servers_links" not in body


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("query", ["LIMIT=1", "Limit=1", "LIMIT=abc", "MARKER=no-such-marker"])
def test_query_names_are_case_sensitive(world, fresh, kind, query):
    """As in Nova, whose webob reads req.GET by exact name: LIMIT is not
    limit, and is ignored like any other unknown parameter (until
    2026-12-05 attachd's lookups ignored case, libmicrohttpd's way)."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    ids = {create_server(s, world.base, pfx, f"c{i}") for i in range(2)}
    r = s.get(f"{world.base}{pfx}/servers?{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {x["id"] for x in body["servers"]} == ids
    assert "servers_links" not in body


def mv(version):
    return {"OpenStack-API-Version": f"compute {version}"} if version else {}


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_unknown_parameters_are_400_from_2_75(world, fresh, tail):
    """Nova's index_query_v275 (additionalProperties false): from 2.75 a
    name outside the list's query schema is 400, named with the others
    sorted; before, it is ignored. Nova's own filters pass, and so does a
    name starting with '_' (patternProperties), which only an admin has
    refused (test_admin_filters_on_joined_tables_are_400)."""
    acct, s = fresh
    ids = {create_server(s, world.base, "/v2.1", f"u{i}") for i in range(2)}
    url = f"{world.base}/v2.1{tail}"
    for version in (None, "2.74"):
        r = s.get(f"{url}?colour=red&LIMIT=1", headers=mv(version))
        assert r.status_code == 200, r.text
        assert {x["id"] for x in r.json()["servers"]} == ids
    r = s.get(f"{url}?colour=red&status=ACTIVE&LIMIT=1&colour=blue", headers=mv("2.75"))
    assert_error("nova", r, 400, nova_message="Additional properties are not allowed "
                 "('LIMIT', 'colour' were unexpected)")
    r = s.get(f"{url}?status=ACTIVE&sort_key=display_name&not-tags=a&locked=false&_x=1"
              "&metadata=m", headers=mv("2.75"))
    assert r.status_code == 200, r.text
    assert {x["id"] for x in r.json()["servers"]} == ids
    # the schema's properties are checked before what it does not allow
    r = s.get(f"{url}?colour=red&limit=x", headers=mv("2.75"))
    assert_error("nova", r, 400, nova_message="Invalid input for query parameters limit. "
                 "Value: x. 'x' does not match '^[0-9]*$'")


# Nova's schemas/servers.py: VALID_SORT_KEYS and SERVER_LIST_IGNORE_SORT_KEY
SORT_KEYS = [
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
    "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
    "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by",
    "node", "power_state", "progress", "project_id", "ramdisk_id", "root_device_name",
    "task_state", "terminated_at", "updated_at", "user_id", "uuid", "vm_state"]
IGNORED_SORT_KEYS = [
    "architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device",
    "deleted", "deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id",
    "key_data", "launched_on", "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
    "shutdown_terminate", "user_data", "vcpus", "vm_mode"]


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_sort_keys_are_nova_s(world, fresh, tail):
    """Nova's query schema holds every sort_key to its enum, before it
    checks limit: VALID_SORT_KEYS and the keys it ignores before 2.73,
    'locked' first from 2.73, the ignored keys refused from 2.75 (whose
    lists Nova builds from sets: their order is not checked). attachd
    sorts by none of them; the Hostway dialect does not check them."""
    acct, s = fresh
    create_server(s, world.base, "/v2.1", "sorted")
    url = f"{world.base}/v2.1{tail}"

    def refused(query, version):
        r = s.get(f"{url}?{query}", headers=mv(version))
        f = assert_error("nova", r, 400)
        head, _, listed = f["message"].partition(" is not one of ")
        return head, ast.literal_eval(listed)

    head, listed = refused("sort_key=display_name&sort_key=name&limit=x&sort_key=nope", None)
    assert head == "Invalid input for query parameters sort_key. Value: name. 'name'"
    assert listed == SORT_KEYS + IGNORED_SORT_KEYS
    head, listed = refused("sort_key=colour", "2.73")
    assert listed[0] == "locked" and sorted(listed) == sorted(SORT_KEYS + IGNORED_SORT_KEYS)
    assert len(listed) == len(set(listed))
    head, listed = refused("sort_key=cell_name", "2.75")
    assert head == ("Invalid input for query parameters sort_key. Value: cell_name. "
                    "'cell_name'")
    assert sorted(listed) == sorted(SORT_KEYS + ["locked"])
    for version in (None, "2.72", "2.73", "2.75"):
        r = s.get(f"{url}?sort_key=display_name&sort_key=locked_by&sort_dir=asc",
                  headers=mv(version))
        assert r.status_code == 200 and len(r.json()["servers"]) == 1, r.text
    for version in (None, "2.74"):
        r = s.get(f"{url}?sort_key=cell_name&sort_key=locked", headers=mv(version))
        assert r.status_code == 200, r.text
    r = s.get(f"{world.base}{tail}?sort_key=colour")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_sort_dirs_are_nova_s(world, fresh, tail):
    """Nova's sort directions past its schema (get_sort_params(),
    remove_invalid_sort_keys(), process_sort_params()): each stripped, asc
    or desc, no more of them than keys (created_at when none is given), a
    key Nova ignores taking the direction at its place away; a member's
    host or node is 403; none is read when the list is known empty first."""
    acct, s = fresh
    mine = create_server(s, world.base, "/v2.1", "sorted")
    url = f"{world.base}/v2.1{tail}"

    def get(query, version=None, session=s):
        return session.get(f"{url}?{query}", headers=mv(version))

    def listed(query, version=None, session=s):
        r = get(query, version, session)
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    unknown = "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
    exceeds = "Invalid input received: Sort direction size exceeds sort key size"
    for query, message in (("sort_dir=up", unknown), ("sort_dir=ASC", unknown),
                           ("sort_dir=asc&sort_dir=desc", exceeds),
                           ("sort_key=display_name&sort_dir=asc&sort_dir=desc&sort_dir=up",
                            unknown),
                           ("sort_key=id&sort_dir=asc&sort_dir=desc", exceeds),
                           ("sort_key=display_name&sort_dir=asc&sort_dir=desc", exceeds)):
        assert_error("nova", get(query), 400, nova_message=message)
    for query in ("sort_dir=%20asc%0A", "sort_dir=desc%E3%80%80", "sort_key=id&sort_dir=up",
                  "sort_key=display_name&sort_key=created_at&sort_dir=asc&sort_dir=desc",
                  "sort_key=id&sort_key=uuid&sort_dir=up&sort_dir=asc"):
        assert listed(query) == [mine], query
    # 'locked' is a key Nova ignores before 2.73, and sorts by from it
    assert listed("sort_key=locked&sort_dir=up", "2.72") == [mine]
    assert_error("nova", get("sort_key=locked&sort_dir=up", "2.73"), 400, nova_message=unknown)
    # a list known empty first reads no direction
    for query in ("flavor=nope&sort_dir=up", "limit=0&sort_dir=up", "ip=10.0.0.9&sort_dir=up",
                  "status=STOPPED&sort_dir=up"):
        assert listed(query, "2.37") == [], query
    # host and node are an admin's
    for key in ("host", "node"):
        assert_error("nova", get(f"sort_key={key}&sort_dir=up"), 403,
                     nova_message=f"Only administrators can sort servers by {key}")
    assert_error("nova", get("limit=%0A&sort_key=host"), 400, text_contains="limit")
    theirs = f"all_tenants=1&project_id={acct}"
    assert listed(f"{theirs}&sort_key=host&sort_dir=asc", session=world.admin) == [mine]
    assert_error("nova", get(f"{theirs}&sort_key=node&sort_dir=up", session=world.admin), 400,
                 nova_message=unknown)
    assert s.get(f"{world.base}{tail}?sort_dir=up").status_code == 200     # Hostway


@pytest.mark.parametrize("query,bad", [
    ("metadata=x", "metadata"),
    ("status=ACTIVE&_secret=1&metadata=x", "_secret"),
    ("pci_devices=1&_secret=1", "pci_devices"),
])
def test_admin_filters_on_joined_tables_are_400(world, fresh, query, bad):
    """Nova's _get_servers() reads every filter an admin gives, and refuses
    a joined table or a name starting with '_' (the first in the query) at
    any version; a member's are dropped unread."""
    acct, s = fresh
    create_server(s, world.base, "/v2.1", "f")
    for version in (None, "2.75"):
        r = world.admin.get(f"{world.base}/v2.1/servers?{query}", headers=mv(version))
        assert_error("nova", r, 400, nova_message=f"Invalid filter field: {bad}.")
        assert s.get(f"{world.base}/v2.1/servers?{query}", headers=mv(version)).status_code == 200
    # the query schema first
    r = world.admin.get(f"{world.base}/v2.1/servers?{query}&limit=x")
    assert_error("nova", r, 400, nova_message="Invalid input for query parameters limit. "
                 "Value: x. 'x' does not match '^[0-9]*$'")
    # the Hostway dialect has no such filters
    r = world.admin.get(f"{world.base}/servers?{query}")
    assert r.status_code == 200, r.text


def _stopped_and_active(world, s, pfx, n=2):
    """n active servers and one stopped one: (active ids, the stopped id)."""
    active = [create_server(s, world.base, pfx, f"a{i}") for i in range(n)]
    stopped = create_server(s, world.base, pfx, "stopped")
    r = s.post(f"{world.base}{pfx}/servers/{stopped}/action", json={"os-stop": None})
    assert r.status_code == 202, r.text
    return active, stopped


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_status_filter(world, fresh, kind, tail):
    """Nova's filter by status (_get_servers(), common.py's
    task_and_vm_state_from_status()): each `status` given, in any case,
    names the servers in the states that show it; all of the account's
    servers are searched, and the next link keeps the filter."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    active, stopped = _stopped_and_active(world, s, pfx, 3)
    url = f"{world.base}{pfx}{tail}"

    def ids(query):
        r = s.get(f"{url}?{query}")
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    assert sorted(ids("status=ACTIVE")) == sorted(active)
    assert ids("status=shutoff") == [stopped]
    assert sorted(ids("status=SHUTOFF&status=Active")) == sorted(active + [stopped])
    assert ids("status=PAUSED") == []
    assert ids("status=REBOOT") == []           # a status of Nova's: nothing is rebooting
    assert ids("status=SHUTOFF&name=a") == []
    assert ids("status=ACTIVE&name=a1") == [active[1]]
    # paging through the filtered list
    r = s.get(f"{url}?status=ACTIVE&limit=2")
    body = r.json()
    assert len(body["servers"]) == 2, body
    href = body["servers_links"][0]["href"]
    assert href.endswith(f"{tail}?limit=2&status=ACTIVE&marker={body['servers'][-1]['id']}"), href
    parts = urllib.parse.urlsplit(href)
    rest = s.get(f"{world.base}{parts.path}?{parts.query}").json()
    assert [x["id"] for x in rest["servers"]] == [active[0]], rest
    assert "servers_links" not in rest


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_next_link_is_the_query_as_nova_writes_it(world, fresh, kind):
    """Nova's _get_next_link(): the request's parameters sorted by name
    (the last value of each), the marker set in its place."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    for i in range(4):
        create_server(s, world.base, pfx, f"l{i}")
    first = s.get(f"{world.base}{pfx}/servers").json()["servers"]
    assert len(first) == 4, first
    r = s.get(f"{world.base}{pfx}/servers?marker={first[0]['id']}&name=l&limit=1&limit=2"
              "&zz=1&a=%2F")
    body = r.json()
    assert [x["id"] for x in body["servers"]] == [x["id"] for x in first[1:3]], body
    href = body["servers_links"][0]["href"]
    assert href.split("?", 1)[1] == f"a=%2F&limit=2&marker={first[2]['id']}&name=l&zz=1", href


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_image_flavor_and_address_filters(world, fresh, kind):
    """The rest of the filters Nova gives a member that attachd can apply:
    `image` and `flavor` by id (an unknown flavor lists nothing, before the
    marker is read, as compute/api.py's get_all() returns early), and `ip`
    (`ip6` from 2.5, or for an admin), which no server of attachd's has."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    small = []
    for i in range(2):
        r = s.post(f"{world.base}{pfx}/servers", json=server_body(f"f{i}", flavorRef="2"))
        assert r.status_code == 202, r.text
        small.append(r.json()["server"]["id"])
    tiny = create_server(s, world.base, pfx, "tiny")
    url = f"{world.base}{pfx}/servers"

    def ids(query, session=s, version=None, url=url):
        r = session.get(f"{url}?{query}", headers=mv(version))
        assert r.status_code == 200, (query, r.text)
        return sorted(x["id"] for x in r.json()["servers"])

    everyone = sorted(small + [tiny])
    assert ids("flavor=2") == sorted(small)
    assert ids("flavor=1") == [tiny]
    assert ids("flavor=2&status=ACTIVE&name=f1") == [small[1]]
    assert ids("flavor=9") == []
    assert ids("flavor=9&marker=no-such") == []
    assert ids(f"image={IMAGE_REF}") == everyone
    assert ids(f"image={IMAGE_REF}&flavor=1") == [tiny]
    assert ids("image=d34db33f") == [] and ids("image=") == []
    assert ids("ip=10.0.0.1") == []
    for empty in ("flavor", "ip"):      # Nova's schema: an empty "regex" is none
        if dialect_of(kind) == "nova":
            assert_error("nova", s.get(f"{url}?{empty}="), 400, nova_message="Invalid input "
                         f"for query parameters {empty}. Value: . '' is not a 'regex'")
        else:
            assert ids(f"{empty}=") == []
    assert ids("ip6=%3A%3A1") == everyone           # a member's before 2.5: dropped
    if dialect_of(kind) == "nova":
        assert ids("ip6=%3A%3A1", version="2.5") == []
    admin_url = f"{world.base}{prefix(kind, world.ops)}/servers"
    assert ids("ip6=%3A%3A1", session=world.admin, url=admin_url) == []
    r = s.get(f"{url}?flavor=1&marker=no-such")
    assert_error(dialect_of(kind), r, 400)


ACCEPTABLE = ("acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', "
              "'true', 'y', 'yes'")


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_all_tenants(world, fresh, tail):
    """Nova's all_tenants (common.py's is_all_tenants()): an admin's list of
    every account's servers, or of project_id's (tenant_id's) alone; empty
    is true, a value that is no boolean is 400, and a member's true is the
    policy's 403. The Hostway dialect has no such parameter."""
    acct, s = fresh
    other = world.d.add_account()
    o_user, o_pw = world.d.add_user(other)
    so = world.d.session(o_user, o_pw)
    tag = unique("every")
    mine = [create_server(s, world.base, "/v2.1", f"{tag}-m{i}") for i in range(2)]
    theirs = [create_server(so, world.base, "/v2.1", f"{tag}-t{i}") for i in range(2)]
    ops = create_server(world.admin, world.base, "/v2.1", f"{tag}-ops")
    url = f"{world.base}/v2.1{tail}"

    def ids(query, session=world.admin, url=url):
        r = session.get(f"{url}?name={tag}&{query}")
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    every = [ops] + theirs[::-1] + mine[::-1]     # newest first
    for query in ("all_tenants=1", "all_tenants", "all_tenants=", "all_tenants=%20Yes%20",
                  "all_tenants=no&all_tenants=on"):
        assert ids(query) == every, query
    assert ids(f"all_tenants=1&project_id={other}") == theirs[::-1]
    assert ids(f"all_tenants=true&tenant_id={acct}") == mine[::-1]
    # both: the one whose name first stands later (get_all() copies them in
    # that order, tenant_id onto project_id)
    assert ids(f"all_tenants=1&project_id={other}&tenant_id={acct}") == mine[::-1]
    assert ids(f"all_tenants=1&tenant_id={other}&project_id={acct}") == mine[::-1]
    assert ids(f"all_tenants=1&tenant_id={acct}&project_id={other}&tenant_id=x") == \
        theirs[::-1]
    assert ids(f"all_tenants=0&project_id={other}") == [ops]   # only with all_tenants
    assert ids("all_tenants=off") == [ops]
    assert ids("all_tenants=1", url=f"{world.base}/v2.1/{acct}{tail}") == every
    assert ids("all_tenants=1", url=f"{world.base}{tail}") == [ops]    # Hostway
    # paged across accounts
    r = world.admin.get(f"{url}?name={tag}&all_tenants=1&limit=3")
    body = r.json()
    assert [x["id"] for x in body["servers"]] == every[:3], body
    parts = urllib.parse.urlsplit(body["servers_links"][0]["href"])
    assert urllib.parse.parse_qs(parts.query)["all_tenants"] == ["1"], parts
    r = world.admin.get(f"{world.base}{parts.path}?{parts.query}")
    assert [x["id"] for x in r.json()["servers"]] == every[3:], r.text
    for session in (world.admin, s):
        r = session.get(f"{url}?all_tenants=maybe")
        assert_error("nova", r, 400, nova_message="Invalid input received: Unrecognized value "
                     f"'maybe', {ACCEPTABLE}")
    policy = "index" if tail == "/servers" else "detail"
    for query in ("all_tenants=1", "all_tenants"):
        r = s.get(f"{url}?{query}")
        assert_error("nova", r, 403, nova_message="Policy doesn't allow "
                     f"os_compute_api:servers:{policy}:get_all_tenants to be performed.")
    assert ids("all_tenants=0", session=s) == mine[::-1]


def test_locked_filter(world, fresh):
    """Nova's locked filter (common.py's is_locked()): one of oslo's
    booleans, else 400, read after all_tenants and before its policy's 403;
    a member's from 2.73 (before, it is dropped unread), an admin's at any
    version."""
    acct, s = fresh
    url = f"{world.base}/v2.1/servers"
    free = [create_server(s, world.base, "/v2.1", f"free{i}") for i in range(2)]
    locked = create_server(s, world.base, "/v2.1", "locked")
    r = s.post(f"{url}/{locked}/action", json={"lock": None})
    assert r.status_code == 202, r.text

    def ids(query, version="2.73", session=s):
        r = session.get(f"{url}?{query}", headers=mv(version))
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    assert ids("locked=true") == [locked]
    assert ids("locked=%20T") == [locked]
    assert ids("locked=0") == free[::-1]
    assert ids("locked=no&locked=1", version="2.89") == [locked]
    assert ids("locked=maybe", version="2.72") == [locked] + free[::-1]
    for query, bad in (("locked=maybe", "maybe"), ("locked=", ""),
                       ("all_tenants=1&locked=x", "x"), ("all_tenants=y&locked=x", "x"),
                       ("all_tenants=z&locked=x", "z")):
        r = s.get(f"{url}?{query}", headers=mv("2.73"))
        assert_error("nova", r, 400, nova_message="Invalid input received: Unrecognized value "
                     f"'{bad}', {ACCEPTABLE}")
    theirs = f"all_tenants=1&project_id={acct}"
    assert ids(f"{theirs}&locked=1", version=None, session=world.admin) == [locked]
    r = world.admin.get(f"{url}?locked=x")
    assert_error("nova", r, 400, text_contains="Unrecognized value 'x'")
    assert ids("locked=1", version=None) == [locked] + free[::-1]
    r = s.get(f"{world.base}/servers?locked=1")       # the Hostway dialect has no such filter
    assert len(r.json()["servers"]) == 3, r.text


def _shifted(iso_z, seconds):
    """A server's "updated" (YYYY-MM-DDTHH:MM:SSZ) moved by seconds, same form."""
    t = datetime.datetime.strptime(iso_z, "%Y-%m-%dT%H:%M:%SZ")
    return (t + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_changes_since_and_before(world, fresh, tail):
    """Nova's changes-since and changes-before (_get_servers()): the servers
    whose updated_at, to the second the API shows, is at or after the one
    and at or before the other; any of iso8601's forms and zones; the
    schema checks every value (changes-before from 2.66), and a before
    earlier than the since is 400."""
    acct, s = fresh
    url = f"{world.base}/v2.1{tail}"
    old, new = (create_server(s, world.base, "/v2.1", n) for n in ("old", "new"))
    t_old, t_new = (get_server(s, world.base, "/v2.1", i)["updated"] for i in (old, new))
    later, earlier = _shifted(t_new, 1), _shifted(t_old, -1)

    def get(query, version="2.66", session=s, url=url):
        return session.get(f"{url}?{urllib.parse.quote(query, safe='=&')}", headers=mv(version))

    def ids(query, **kw):
        r = get(query, **kw)
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    both = [new, old]
    assert ids(f"changes-since={t_old}") == both
    assert ids(f"changes-since={later}") == []
    assert ids(f"changes-before={t_new}") == both
    assert ids(f"changes-before={earlier}") == []
    assert ids(f"changes-since={t_old}&changes-before={t_new}") == both
    # a fraction: the since rounds up to the next second, the before down
    assert ids(f"changes-since={t_new[:-1]}.000001Z") == []
    assert ids(f"changes-before={earlier[:-1]},999999") == []
    assert old in ids(f"changes-before={t_old[:-1]}.999999")
    # the same instant in other zones and forms; none given is UTC
    plus_one = _shifted(t_new, 3600)[:-1] + "+01:00"
    minus_half = _shifted(t_new, -1800)[:-1].replace("-", "").replace(":", "") + "-0030"
    for since in (plus_one, minus_half, t_new[:-1], t_new[:-1].replace("T", " ")):
        assert new in ids(f"changes-since={since}"), since
    assert ids(f"changes-since={later[:-1]}+00") == []
    assert ids("changes-since=2000") == both
    assert ids("changes-since=9999-12-31T23:59:59-23:59") == []
    assert ids("changes-before=0001-01-01T00:00:00+23:59") == []
    # every value is checked, the last one counts
    assert ids(f"changes-since=2000&changes-since={later}") == []
    for query, name, bad in (
            ("changes-since=yesterday", "changes-since", "yesterday"),
            ("changes-since=", "changes-since", ""),
            (f"changes-since=2023-02-29&changes-since={t_old}", "changes-since", "2023-02-29"),
            ("changes-since=2026-12-06T24:00", "changes-since", "2026-12-06T24:00"),
            ("changes-since=202612", "changes-since", "202612"),
            ("changes-before=2026-12-06T10:00+24:00", "changes-before",
             "2026-12-06T10:00+24:00"),
            ("limit=x&changes-since=2026-13-01", "changes-since", "2026-13-01")):
        assert_error("nova", get(query), 400, nova_message=f"Invalid input for query "
                     f"parameters {name}. Value: {bad}. '{bad}' is not a 'date-time'")
    # in the schema's order: sort_key, changes-since, limit, changes-before
    for query, first in (("changes-since=x&sort_key=colour", "sort_key"),
                         ("changes-before=x&limit=x", "limit")):
        assert_error("nova", get(query), 400, text_contains=f"query parameters {first}.")
    for query in (f"changes-since={later}&changes-before={t_new}",
                  f"changes-since={later}&changes-before={t_new}&status=DELETED"):  # not 403
        assert_error("nova", get(query), 400, nova_message="The value of changes-since must "
                     "be less than or equal to changes-before.")
    # before 2.66 a member's changes-before is dropped unread; an admin's is read
    assert ids("changes-before=no", version="2.65") == both
    assert ids(f"changes-before={earlier}", version="2.65") == both
    theirs = f"all_tenants=1&project_id={acct}"
    assert ids(f"{theirs}&changes-before={earlier}", version=None, session=world.admin) == []
    assert_error("nova", get(f"{theirs}&changes-before=no", version=None, session=world.admin),
                 400, nova_message="Invalid filter field: changes-before.")
    # the Hostway dialect has neither
    r = get(f"changes-since=yesterday&changes-before={earlier}", url=f"{world.base}{tail}")
    assert r.status_code == 200 and len(r.json()["servers"]) == 2, r.text


@pytest.mark.parametrize("tail", ["/servers", "/servers/detail"])
def test_filters_of_2_83(world, fresh, tail):
    """An admin's filters, and a member's from 2.83 (Nova's
    _get_server_search_options()): user_id, vm_state and task_state exactly
    (a status given sets the vm_state), key_name, availability_zone and
    power_state as attachd reads Nova's regular expressions, the text
    anywhere. Before 2.83 a member's are dropped unread."""
    acct, s = fresh
    url = f"{world.base}/v2.1{tail}"
    (a0, a1), stopped = _stopped_and_active(world, s, "/v2.1", 2)
    me = get_server(s, world.base, "/v2.1", a0)["user_id"]

    def ids(query, version="2.83", session=s):
        r = session.get(f"{url}?{query}", headers=mv(version))
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    every, active = [stopped, a1, a0], [a1, a0]
    for query, expect in (
            (f"user_id={me}", every), ("user_id=someone-else", []), ("user_id=", []),
            ("vm_state=stopped", [stopped]), ("vm_state=active", active),
            ("vm_state=ACTIVE", []), ("vm_state=active,stopped", []),
            ("vm_state=stopped&vm_state=active", active),       # the last value
            ("task_state=powering-off", []),
            ("key_name=k", []),
            ("availability_zone=nov", every), ("availability_zone=zone-b", []),
            ("power_state=4", [stopped]), ("power_state=1", active),
            ("power_state=1&vm_state=stopped", []),
            (f"user_id={me}&vm_state=active&availability_zone=nova", active)):
        assert ids(query) == expect, query
        assert ids(query, version="2.82") == every, query
    # a status sets the vm_state, and the task_state unless it names no task
    assert ids("vm_state=active&status=SHUTOFF") == [stopped]
    assert ids("task_state=powering-off&status=ACTIVE") == []
    assert ids("task_state=powering-off&status=ACTIVE", version="2.82") == active
    theirs = f"all_tenants=1&project_id={acct}"
    assert ids(f"{theirs}&power_state=4", version=None, session=world.admin) == [stopped]
    assert ids(f"{theirs}&vm_state=active", version=None, session=world.admin) == active
    assert ids(f"{theirs}&user_id=x", version=None, session=world.admin) == []
    # an admin's deleted=true lists the deleted servers only: attachd keeps none
    assert ids(f"{theirs}&deleted=true", version=None, session=world.admin) == []
    assert ids(f"{theirs}&deleted=maybe", version=None, session=world.admin) == every
    assert ids("deleted=true") == every             # a member's is dropped
    r = s.get(f"{world.base}{tail}?vm_state=stopped&power_state=4")    # Hostway: neither
    assert len(r.json()["servers"]) == 3, r.text


def test_regex_filters_are_checked_as_nova_s_schema_does(world, fresh):
    """Nova's query schema holds its filters by regular expression (name,
    flavor, ip, key_name, ... and from 2.26 the tags) to the "regex"
    format: not empty, and taken by Python's re.compile(); every value is
    checked, in the schema's order among its other checks."""
    acct, s = fresh
    create_server(s, world.base, "/v2.1", "web(1)")
    url = f"{world.base}/v2.1/servers"

    def get(query, version="2.26"):
        return s.get(f"{url}?{urllib.parse.quote(query, safe='=&')}", headers=mv(version))

    def refused(query, name, bad, version="2.26"):
        assert_error("nova", get(query, version), 400, nova_message="Invalid input for query "
                     f"parameters {name}. Value: {bad}. {bad!r} is not a 'regex'")

    for name in ("name", "flavor", "key_name", "availability_zone", "ip", "ip6", "hostname",
                 "power_state", "created_at", "progress", "tags", "not-tags-any"):
        refused(f"{name}=web(1", name, "web(1")
        refused(f"{name}=", name, "")
        refused(f"{name}=web&{name}=*", name, "*")
    # a valid expression passes, and attachd still looks for its text
    assert [x["name"] for x in get("name=web(1)").json()["servers"]] == ["web(1)"]
    assert get("name=web\\(1\\)").json()["servers"] == []
    # in the schema's order: name, sort_key, changes-since, ip, limit, tags, changes-before
    for query, first in (("sort_key=colour&name=(", "name"), ("ip=(&sort_key=colour", "sort_key"),
                         ("ip=(&changes-since=x", "changes-since"), ("limit=x&ip=(", "ip"),
                         ("tags=(&limit=x", "limit")):
        assert_error("nova", get(query), 400, text_contains=f"query parameters {first}.")
    assert_error("nova", get("changes-before=x&tags=(", "2.66"), 400,
                 text_contains="query parameters tags.")
    assert get("tags=(", "2.25").status_code == 200      # not in the schema before 2.26
    r = s.get(f"{world.base}/servers?name=(")           # the Hostway dialect has no schema
    assert r.status_code == 200, r.text


def test_regex_format_is_python_s(world, fresh):
    """Every pattern that Python's re.compile() (3.11, as Nova's format
    check calls it) takes passes, and every other is 400: its parser's
    checks, backtracking of repeats included, group references, flags,
    look-behind widths. Compared on generated patterns, Python the oracle."""
    acct, s = fresh
    url = f"{world.base}/v2.1/servers"
    rnd = random.Random(1999)
    atoms = ["a", "é", ".", "^", "$", "\\d", "\\b", "\\A", "\\1", "\\2", "\\12",
             "\\0", "\\400", "\\x4", "\\x41", "\\u00e9", "\\U00110000", "\\q", "\\",
             "[", "]", "[a-z]", "[z-a]", "[\\d-z]", "[^]]", "[\\B]", "(", ")", "(?:",
             "(?P<n>", "(?P=n)", "(?P<1>", "(?#c)", "(?=", "(?<=", "(?<!", "(?(1)", "(?(n)",
             "(?(0)", "(?>", "(?i)", "(?x)", "(?a)", "(?u)", "(?L)", "(?t)", "(?i-i:",
             "(?a-i:", "(?-a:", "(?P", "(?", "|", "*", "+", "?", "*?", "*+", "{2}", "{,3}",
             "{3,2}", "{}", "{x}", "{4294967295}", " ", "#", "\n", "bc", "\\Ł", "[\\Ť-z]"]
    cases = ["(?<=a|bc)", "(?<=a|b)", "(a)(?<=\\1)", "(?<=(a)\\1)", "(?<=a{1,2})",
             "(?<=x{2147483648})", "(?a)(?u)a", "(?t)a*", "((((a))))", "a**", "^*"]
    cases += ["".join(rnd.choice(atoms) for _ in range(rnd.randint(1, 7))) for _ in range(700)]
    taken = 0
    for case in cases:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # "Possible nested set", ...
                re.compile(case)
            ok = True
        except Exception:       # re.error, and what Nova would answer 500 with
            ok = False
        taken += ok
        r = s.get(url, params={"name": case})
        assert r.status_code == (200 if ok else 400), (case, r.text)
    assert 40 < taken < len(cases) - 40, taken     # both kinds were asked


def test_tag_filters(world, fresh):
    """Nova's tag filters (a member's from 2.26, an admin's at any version):
    no server of attachd's has a tag, so tags and tags-any list nothing and
    not-tags and not-tags-any keep every server; the sort directions are
    still read (Nova filters after it has checked them)."""
    acct, s = fresh
    mine = [create_server(s, world.base, "/v2.1", f"t{i}") for i in range(2)][::-1]
    url = f"{world.base}/v2.1/servers"

    def ids(query, version="2.26", session=s):
        r = session.get(f"{url}?{query}", headers=mv(version))
        assert r.status_code == 200, (query, r.text)
        return [x["id"] for x in r.json()["servers"]]

    for query, expect in (("tags=a", []), ("tags=a,b", []), ("tags-any=a", []),
                          ("not-tags=a", mine), ("not-tags-any=a,b", mine),
                          ("tags=a&not-tags=b", [])):
        assert ids(query) == expect, query
        assert ids(query, version="2.25") == mine, query    # a member's: dropped
    theirs = f"all_tenants=1&project_id={acct}"
    assert ids(f"{theirs}&tags-any=a", version=None, session=world.admin) == []
    r = s.get(f"{url}?tags=a&sort_dir=up", headers=mv("2.26"))
    assert_error("nova", r, 400, text_contains="Unknown sort direction")


def test_changes_since_reads_times_as_iso8601_does(world, fresh):
    """Every string that the iso8601 library (oslo's parse_isotime(), which
    Nova's "date-time" is) reads passes, and every other is 400: the
    library's regular expression, backtracking included, and datetime's
    ranges. Compared on generated strings, the library itself the oracle."""
    iso8601 = pytest.importorskip("iso8601")
    acct, s = fresh
    url = f"{world.base}/v2.1/servers"
    rnd = random.Random(8601)
    digits = lambda n: "".join(rnd.choice("0123456789") for _ in range(n))  # noqa: E731
    parts = [lambda: "-" + digits(rnd.randint(0, 3)), lambda: digits(2), lambda: digits(1),
             lambda: rnd.choice(" T") + digits(2), lambda: ":" + digits(2),
             lambda: rnd.choice(".,") + digits(rnd.randint(0, 8)), lambda: "Z",
             lambda: rnd.choice("+-") + digits(2), lambda: ":", lambda: "\n", lambda: "x"]
    cases = ["2026-12-06T10:20:30.5+01:00", "2026-12-06T102030", "2026-12-06T105",
             "2026-1205", "2026\n", "2026\n\n", "0000-01-01", "2024-02-29", "2023-02-29",
             "2026-12-06T10-23:99", "2026-12-06T10+23:99"]
    cases += ["".join([rnd.choice(["2026", "2000", "0000", "1999"])] +
                      [rnd.choice(parts)() for _ in range(rnd.randint(0, 7))])
              for _ in range(600)]
    accepted = 0
    for case in cases:
        try:
            iso8601.parse_date(case)
            ok = True
        except iso8601.ParseError:
            ok = False
        accepted += ok
        r = s.get(url, params={"changes-since": case})
        assert r.status_code == (200 if ok else 400), (case, r.text)
    assert 40 < accepted < len(cases) - 40, accepted     # both kinds were asked


@pytest.mark.parametrize("version,code", [(None, 200), ("2.37", 200), ("2.38", 400),
                                          ("2.89", 400)])
def test_unknown_status(world, fresh, version, code):
    """A status that none of Nova's states shows (UNKNOWN included): an
    empty list before 2.38, 400 "Invalid status value" from it; the Hostway
    dialect reads it as 2.1 does."""
    acct, s = fresh
    _stopped_and_active(world, s, "/v2.1", 1)
    for tail in ("/servers", "/servers/detail"):
        for query in ("status=STOPPED", "status=UNKNOWN&status=", "status"):
            r = s.get(f"{world.base}/v2.1{tail}?{query}", headers=mv(version))
            if code == 200:
                assert r.status_code == 200, r.text
                assert r.json() == {"servers": []}, r.text
            else:
                assert_error("nova", r, 400, nova_message="Invalid status value")
            # one status Nova knows among them is enough
            r = s.get(f"{world.base}/v2.1{tail}?{query}&status=SHUTOFF", headers=mv(version))
            assert len(r.json()["servers"]) == 1, r.text
        r = s.get(f"{world.base}{tail}?status=STOPPED", headers=mv(version))
        assert r.status_code == 200 and r.json() == {"servers": []}, r.text
        # before 2.38 the empty list is answered at once: the filters after
        # status (all_tenants, locked) are not read
        r = s.get(f"{world.base}/v2.1{tail}?status=STOPPED&all_tenants=x&locked=y",
                  headers=mv(version))
        if code == 200:
            assert r.status_code == 200 and r.json() == {"servers": []}, r.text
        else:
            assert_error("nova", r, 400, nova_message="Invalid status value")


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_deleted_servers_are_listed_only_to_an_admin(world, fresh, kind):
    """status=DELETED alone: a member's is 403, as in Nova's _get_servers();
    an admin's lists the deleted servers, which attachd does not keep."""
    acct, s = fresh
    pfx = prefix(kind, acct)
    _stopped_and_active(world, s, pfx, 1)
    for tail in ("/servers", "/servers/detail"):
        r = s.get(f"{world.base}{pfx}{tail}?status=deleted")
        assert_error(dialect_of(kind), r, 403,
                     nova_message="Only administrators may list deleted instances",
                     text_contains="Only administrators may list deleted instances")
        r = s.get(f"{world.base}{pfx}{tail}?status=DELETED&status=SHUTOFF")
        assert len(r.json()["servers"]) == 1, r.text
        r = world.admin.get(f"{world.base}{prefix(kind, world.ops)}{tail}?status=DELETED")
        assert r.status_code == 200 and r.json() == {"servers": []}, r.text


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_delete_is_204_and_gone(world, kind):
    pfx = prefix(kind, world.a)
    sid = create_server(world.sa, world.base, pfx, unique("del"))
    r = world.sa.delete(f"{world.base}{pfx}/servers/{sid}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_request_ids(r)
    assert_not_found(dialect_of(kind), world.sa.get(f"{world.base}{pfx}/servers/{sid}"), sid)
    assert_not_found(dialect_of(kind), world.sa.delete(f"{world.base}{pfx}/servers/{sid}"), sid)
    lst = world.sa.get(f"{world.base}{pfx}/servers").json()["servers"]
    assert sid not in [x["id"] for x in lst]


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_delete_unknown_is_404(world, kind):
    sid = unique("ghost")
    assert_not_found(dialect_of(kind),
                     world.sa.delete(f"{world.base}{prefix(kind, world.a)}/servers/{sid}"), sid)


# Create-body validation, Nova's schema: (body, field the message must name).
INVALID_CREATES = {
    "no-server-key": ({"name": "x"}, "server"),
    "server-not-object": ({"server": "x"}, "server"),
    "missing-name": ({"server": {"flavorRef": "1", "imageRef": IMAGE_REF}}, "name"),
    "empty-name": (server_body(""), "name"),
    "long-name": (server_body("n" * 256), "name"),
    "name-int": (server_body(123), "name"),
    "name-null": (server_body(None), "name"),
    "name-list": (server_body(["a"]), "name"),
    "missing-flavorRef": ({"server": {"name": "x", "imageRef": IMAGE_REF}}, "flavorRef"),
    "flavorRef-list": (server_body("x", flavorRef=["1"]), "flavorRef"),
    "flavorRef-empty": (server_body("x", flavorRef=""), "flavorRef"),
    "imageRef-object": (server_body("x", imageRef={"id": 1}), "imageRef"),
    "unknown-key": (server_body("x", bogusField=1), "bogusField"),
    "unknown-top-level": (dict(server_body("x"), extraTop=1), "extraTop"),
    "metadata-not-object": (server_body("x", metadata="a"), "metadata"),
    "body-is-list": ([{"server": {}}], None),
    "body-is-string": ("server", None),
}


@pytest.mark.parametrize("kind", ["hostway", "nova"])
@pytest.mark.parametrize("case", sorted(INVALID_CREATES))
def test_create_validation(world, kind, case):
    body, field = INVALID_CREATES[case]
    pfx = prefix(kind, world.a)
    before = len(world.sa.get(f"{world.base}{pfx}/servers").json()["servers"])
    r = world.sa.post(f"{world.base}{pfx}/servers", json=body)
    assert_error(dialect_of(kind), r, 400, text_contains=field)
    # nothing was created
    assert len(world.sa.get(f"{world.base}{pfx}/servers").json()["servers"]) == before


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_one_server_per_request(world, kind):
    """min_count and max_count as Nova checks them, and 1: a request for
    several servers is refused, not answered with one."""
    pfx = prefix(kind, world.a)
    url = f"{world.base}{pfx}/servers"
    before = len(world.sa.get(url).json()["servers"])
    for counts, message in [({"min_count": 2, "max_count": 1}, "min_count must be <= max_count"),
                            ({"min_count": "3"}, "more than one server"),
                            ({"max_count": 2}, "more than one server"),
                            ({"min_count": "99999999999999999999"}, "more than one server"),
                            ({"min_count": 0}, "min_count"),
                            ({"max_count": "x"}, "max_count")]:
        r = world.sa.post(url, json=server_body(unique("n"), **counts))
        assert_error(dialect_of(kind), r, 400, text_contains=message)
    assert len(world.sa.get(url).json()["servers"]) == before
    for counts in [{"min_count": 1, "max_count": 1}, {"min_count": "1"},
                   {"max_count": "00000000000000000001"}]:
        r = world.sa.post(url, json=server_body(unique("n"), **counts))
        assert r.status_code == 202, (counts, r.text)
    assert len(world.sa.get(url).json()["servers"]) == before + 3


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_create_empty_body_is_400(world, kind):
    r = world.sa.post(f"{world.base}{prefix(kind, world.a)}/servers", data=b"",
                      headers={"Content-Type": "application/json"})
    assert_error(dialect_of(kind), r, 400)


@pytest.mark.parametrize("kind", ["hostway", "nova"])
@pytest.mark.parametrize("name", ["n" * 255, "a", "unicode \u00e9\u4e2d", "with-dash.and_dot"])
def test_create_valid_names(world, kind, name):
    pfx = prefix(kind, world.a)
    sid = create_server(world.sa, world.base, pfx, name)
    assert get_server(world.sa, world.base, pfx, sid)["name"] == name


def test_create_with_metadata_roundtrips(world):
    r = world.sa.post(f"{world.base}/v2.1/servers",
                      json=server_body("meta", metadata={"k": "v", "role": "db"}))
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert get_server(world.sa, world.base, "/v2.1", sid)["metadata"] == {"k": "v", "role": "db"}


def test_nova_schema_message_names_field(world):
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("n" * 256))
    f = assert_error("nova", r, 400)
    assert f["message"].startswith("Invalid input for field/attribute name."), f
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("x", bogusField=1))
    f = assert_error("nova", r, 400)
    assert "bogusField" in f["message"] and "Additional properties" in f["message"], f


def test_image_and_flavor_refs_roundtrip(world):
    sid = create_server(world.sa, world.base, "/v2.1", unique("refs"))
    s = get_server(world.sa, world.base, "/v2.1", sid)
    assert s["image"]["id"] == IMAGE_REF, s["image"]
    assert s["flavor"]["id"] == "1", s["flavor"]


def test_marker_from_another_account_is_400_like_unknown(world):
    """A marker naming another account's server must not reveal that it exists."""
    foreign = world.d.add_server(world.b, name="foreign-marker")
    r1 = world.sa.get(f"{world.base}/v2.1/servers?limit=1&marker={foreign}")
    f1 = assert_error("nova", r1, 400)
    r2 = world.sa.get(f"{world.base}/v2.1/servers?limit=1&marker=unknown-marker")
    f2 = assert_error("nova", r2, 400)
    assert f1["message"].replace(foreign, "M") == f2["message"].replace("unknown-marker", "M")
    assert_error("hostway", world.sa.get(f"{world.base}/servers?marker={foreign}"), 400)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_links_and_location_follow_host_header(world, kind):
    pfx = prefix(kind, world.a)
    host = "api.example.test:8774"
    r = world.sa.post(f"{world.base}{pfx}/servers", json=server_body(unique("host")),
                      headers={"Host": host})
    assert r.status_code == 202, r.text
    assert r.headers["Location"].startswith(f"http://{host}/"), r.headers["Location"]
    for l in r.json()["server"]["links"]:
        assert l["href"].startswith(f"http://{host}/"), l
    sid = r.json()["server"]["id"]
    g = world.sa.get(f"{world.base}{pfx}/servers/{sid}", headers={"Host": host})
    for l in g.json()["server"]["links"]:
        assert l["href"].startswith(f"http://{host}/"), l


# Keys that Nova's create schema (2.1) accepts; a Nova-like schema must not
# call them unknown.
NOVA_OPTIONAL_KEYS = {
    "networks-list": {"networks": [{"uuid": IMAGE_REF}]},
    "security_groups": {"security_groups": [{"name": "default"}]},
    "availability_zone": {"availability_zone": "nova"},
    "adminPass": {"adminPass": "s3cret"},
    "user_data": {"user_data": "aGVsbG8="},
    "config_drive": {"config_drive": True},
    "min-max-count": {"min_count": 1, "max_count": 1},
    "accessIPv4": {"accessIPv4": "192.0.2.1"},
    "diskConfig": {"OS-DCF:diskConfig": "AUTO"},
    "metadata": {"metadata": {"a": "b"}},
}


@pytest.mark.parametrize("case", sorted(NOVA_OPTIONAL_KEYS))
def test_nova_optional_create_keys_accepted(world, case):
    r = world.sa.post(f"{world.base}/v2.1/servers",
                      json=server_body(unique("opt"), **NOVA_OPTIONAL_KEYS[case]))
    assert r.status_code == 202, r.text


def test_nova_scheduler_hints_accepted(world):
    body = dict(server_body(unique("hints")), **{"os:scheduler_hints": {"group": IMAGE_REF}})
    r = world.sa.post(f"{world.base}/v2.1/servers", json=body)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("networks,status", [("auto", 202), ("none", 202), (None, 400)])
def test_networks_required_from_2_37(world, networks, status):
    extra = {} if networks is None else {"networks": networks}
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body(unique("n37"), **extra),
                      headers={"OpenStack-API-Version": "compute 2.37"})
    assert r.status_code == status, r.text
    if status == 400:
        assert "networks" in r.json()["badRequest"]["message"]


def test_missing_image_ref_is_400(world):
    r = world.sa.post(f"{world.base}/v2.1/servers", json={"server": {"name": "x", "flavorRef": "1"}})
    assert_error("nova", r, 400, nova_message="Missing imageRef attribute")
