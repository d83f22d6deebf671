"""Tenancy (docs/api.md, decisions D1 and D6; issue 2 item 5): a member sees only its own account;
another account's server is 404 exactly as if absent, whichever prefix names
it; an admin may act in any account."""
import pytest

from apiutil import (PREFIX_KINDS, action, assert_error, assert_not_found, dialect_of,
                     foreign_prefix, get_server, prefix, unique)


@pytest.fixture
def b_server(world):
    return world.d.add_server(world.b, name=unique("b-owned"))


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_member_gets_404_for_other_accounts_server(world, b_server, kind):
    pfx = prefix(kind, world.a)
    d = dialect_of(kind)
    r = world.sa.get(f"{world.base}{pfx}/servers/{b_server}")
    assert_not_found(d, r, b_server)
    # identical to a server that does not exist at all (modulo ids)
    missing = unique("missing")
    r2 = world.sa.get(f"{world.base}{pfx}/servers/{missing}")
    assert_not_found(d, r2, missing)
    if d == "nova":
        assert r.json()["itemNotFound"]["message"].replace(b_server, "X") == \
            r2.json()["itemNotFound"]["message"].replace(missing, "X")
    else:
        assert r.json()["itemNotFound"]["details"].replace(b_server, "X") == \
            r2.json()["itemNotFound"]["details"].replace(missing, "X")
    ids = [x["id"] for x in world.sa.get(f"{world.base}{pfx}/servers").json()["servers"]]
    assert b_server not in ids
    ids = [x["id"] for x in world.sa.get(f"{world.base}{pfx}/servers/detail").json()["servers"]]
    assert b_server not in ids


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_member_cannot_change_other_accounts_server(world, b_server, kind):
    pfx = prefix(kind, world.a)
    d = dialect_of(kind)
    for act in ("os-stop", "lock", "pause", "suspend"):
        assert_not_found(d, action(world.sa, world.base, pfx, b_server, act), b_server)
    assert_not_found(d, world.sa.delete(f"{world.base}{pfx}/servers/{b_server}"), b_server)
    srv = get_server(world.sb, world.base, "/v2.1", b_server)
    assert srv["status"] == "ACTIVE"
    # not locked either: B can stop it
    assert action(world.sb, world.base, "/v2.1", b_server, "os-stop").status_code == 202


@pytest.mark.parametrize("dialect", ["hostway", "nova"])
@pytest.mark.parametrize("tail", ["/servers", "/servers/detail", "/servers/{sid}",
                                  "/servers/{missing}"])
def test_member_naming_other_account_in_prefix_is_404(world, b_server, dialect, tail):
    pfx = foreign_prefix(dialect, world.b)
    r = world.sa.get(world.base + pfx + tail.format(sid=b_server, missing=unique("m")))
    assert_error(dialect, r, 404)


@pytest.mark.parametrize("dialect", ["hostway", "nova"])
def test_member_cannot_create_in_other_account(world, dialect):
    pfx = foreign_prefix(dialect, world.b)
    before = len(world.sb.get(f"{world.base}/v2.1/servers").json()["servers"])
    r = world.sa.post(world.base + pfx + "/servers",
                      json={"server": {"name": "intruder", "flavorRef": "1",
                                       "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})
    assert_error(dialect, r, 404)
    assert len(world.sb.get(f"{world.base}/v2.1/servers").json()["servers"]) == before


@pytest.mark.parametrize("dialect", ["hostway", "nova"])
def test_member_naming_other_account_action_is_404(world, b_server, dialect):
    pfx = foreign_prefix(dialect, world.b)
    r = action(world.sa, world.base, pfx, b_server, "os-stop")
    assert_error(dialect, r, 404)
    r = world.sa.delete(f"{world.base}{pfx}/servers/{b_server}")
    assert_error(dialect, r, 404)
    assert get_server(world.sb, world.base, "", b_server)["status"] == "ACTIVE"


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_member_sees_own_server_under_own_account_prefix(world, kind):
    sid = world.d.add_server(world.a, name="mine")
    assert get_server(world.sa, world.base, prefix(kind, world.a), sid)["id"] == sid


@pytest.mark.parametrize("pfx_tmpl", ["", "/v2.1", "/v2.1/{b}", "/accounts/{b}/flexcloud"])
def test_admin_sees_any_accounts_server(world, b_server, pfx_tmpl):
    pfx = pfx_tmpl.format(b=world.b)
    srv = get_server(world.admin, world.base, pfx, b_server)
    assert srv["id"] == b_server


@pytest.mark.parametrize("pfx_tmpl", ["", "/v2.1", "/v2.1/{b}", "/accounts/{b}/flexcloud"])
def test_admin_acts_on_any_accounts_server(world, b_server, pfx_tmpl):
    pfx = pfx_tmpl.format(b=world.b)
    r = action(world.admin, world.base, pfx, b_server, "os-stop")
    assert r.status_code in (200, 202, 204), r.text
    assert get_server(world.sb, world.base, "/v2.1", b_server)["status"] == "SHUTOFF"


@pytest.mark.parametrize("dialect", ["hostway", "nova"])
def test_admin_lists_other_account_via_prefix(world, b_server, dialect):
    pfx = foreign_prefix(dialect, world.b)
    r = world.admin.get(world.base + pfx + "/servers")
    assert r.status_code == 200, r.text
    assert b_server in [x["id"] for x in r.json()["servers"]]


def test_admin_deletes_other_accounts_server(world, b_server):
    r = world.admin.delete(f"{world.base}/v2.1/{world.b}/servers/{b_server}")
    assert r.status_code == 204, r.text
    assert_not_found("nova", world.sb.get(f"{world.base}/v2.1/servers/{b_server}"), b_server)


def test_admin_creates_in_other_account(world):
    r = world.admin.post(f"{world.base}/v2.1/{world.b}/servers",
                         json={"server": {"name": "for-b", "flavorRef": "1",
                                          "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    srv = get_server(world.sb, world.base, "/v2.1", sid)
    assert srv["tenant_id"] == world.b


def test_two_members_of_same_account_share_servers(world):
    user, pw = world.d.add_user(world.a)
    s2 = world.d.session(user, pw)
    sid = world.d.add_server(world.a, name="shared")
    assert get_server(s2, world.base, "/v2.1", sid)["id"] == sid
    assert get_server(world.sa, world.base, "", sid)["id"] == sid
