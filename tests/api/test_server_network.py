"""A server's addresses and security groups (docs/api.md,
GET /servers/{server_id}/ips and GET /servers/{server_id}/os-security-groups),
in both dialects, and the `personality` of a server create (Nova up to 2.56).

attachd's servers have no network port, so these are Nova's answers for a
server without one: no addresses, no security groups. Clients ask for them
while they show a server (openstacksdk's server_ips and
fetch_server_security_groups, novaclient's servers.ips and
list_security_group, libcloud's ex_get_node_security_groups:
tests/compat/test_compat_capture.py).
"""
import pytest

from apiutil import (PREFIX_KINDS, assert_error, assert_json, assert_not_found,
                     assert_request_ids, create_server, dialect_of, prefix, server_body, unique)

EMPTY = {"ips": {"addresses": {}}, "os-security-groups": {"security_groups": []}}


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("tail", sorted(EMPTY))
def test_none_for_a_server(world, kind, tail):
    pfx = prefix(kind, world.a)
    sid = create_server(world.sa, world.base, pfx, unique("net"))
    r = world.sa.get(f"{world.base}{pfx}/servers/{sid}/{tail}")
    assert r.status_code == 200, r.text
    assert_request_ids(r)
    assert assert_json(r) == EMPTY[tail]


@pytest.mark.parametrize("version", ["2.1", "2.35", "2.36", "2.89"])
@pytest.mark.parametrize("tail", sorted(EMPTY))
def test_every_microversion(world, version, tail):
    """Neither is one of the proxies that 2.36 removed: Nova serves both at
    every microversion."""
    sid = create_server(world.sa, world.base, "/v2.1", unique("mv"))
    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}/{tail}",
                     headers={"OpenStack-API-Version": f"compute {version}"})
    assert r.status_code == 200, r.text
    assert r.headers["OpenStack-API-Version"] == f"compute {version}"
    assert r.json() == EMPTY[tail]


@pytest.mark.parametrize("kind", ["hostway", "nova"])
@pytest.mark.parametrize("tail", sorted(EMPTY) + ["ips/private"])
def test_unknown_server_is_404(world, kind, tail):
    sid = unique("ghost")
    r = world.sa.get(f"{world.base}{prefix(kind, world.a)}/servers/{sid}/{tail}")
    assert_not_found(dialect_of(kind), r, sid)


@pytest.mark.parametrize("kind", ["hostway-acct", "nova-proj"])
@pytest.mark.parametrize("tail", sorted(EMPTY))
def test_another_accounts_server_is_404(world, kind, tail):
    sid = create_server(world.sb, world.base, prefix(kind, world.b), unique("theirs"))
    r = world.sa.get(f"{world.base}{prefix(kind, world.a)}/servers/{sid}/{tail}")
    assert_not_found(dialect_of(kind), r, sid)


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_one_network_is_404(world, kind):
    """GET .../ips/{network_label}: the server is on no network."""
    pfx = prefix(kind, world.a)
    sid = create_server(world.sa, world.base, pfx, unique("label"))
    r = world.sa.get(f"{world.base}{pfx}/servers/{sid}/ips/private")
    if dialect_of(kind) == "nova":
        assert_error("nova", r, 404,
                     nova_message="Instance is not a member of specified network")
    else:
        assert_not_found("hostway", r)


@pytest.mark.parametrize("kind", ["hostway", "nova"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("tail", sorted(EMPTY))
def test_read_only(world, kind, method, tail):
    pfx = prefix(kind, world.a)
    sid = create_server(world.sa, world.base, pfx, unique("ro"))
    r = world.sa.request(method, f"{world.base}{pfx}/servers/{sid}/{tail}", json={})
    assert_error(dialect_of(kind), r, 405)
    assert r.headers.get("Allow") == "GET, HEAD", r.headers


def test_without_credentials_is_401(world):
    sid = create_server(world.sa, world.base, "/v2.1", unique("anon"))
    for tail in sorted(EMPTY) + ["ips/private"]:
        assert world.anon.get(f"{world.base}/v2.1/servers/{sid}/{tail}").status_code == 401


PERSONALITY = [{"path": "/etc/motd", "contents": "aGVsbG8="}]


@pytest.mark.parametrize("version,status", [(None, 202), ("2.56", 202), ("2.57", 400)])
def test_nova_personality_until_2_56(world, version, status):
    """libcloud's create_node sends `personality` (files to inject); Nova
    accepts it up to 2.56 (attachd injects nothing) and refuses it from 2.57."""
    extra = {"networks": "none"} if version else {}
    headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
    r = world.sa.post(f"{world.base}/v2.1/servers", headers=headers,
                      json=server_body(unique("pers"), personality=PERSONALITY, **extra))
    if status == 202:
        assert r.status_code == 202, r.text
    else:
        assert_error("nova", r, 400, text_contains="personality")


def test_hostway_personality_accepted(world):
    r = world.sa.post(f"{world.base}/servers",
                      json=server_body(unique("pers"), personality=PERSONALITY))
    assert r.status_code == 202, r.text


def test_nova_personality_must_be_a_list(world):
    r = world.sa.post(f"{world.base}/v2.1/servers",
                      json=server_body(unique("pers"), personality="x"))
    assert_error("nova", r, 400, text_contains="personality")
