"""Quotas, GET /limits and metadata bounds (the hardening issue, item 3).

Each account has Nova's default quotas (10 instances, 20 cores, 51200 MiB of
RAM) and Cinder's (10 volumes, 1000 GB) unless `attachd account quota` says
otherwise; a create that would pass one is refused with Nova's or Cinder's
message, in the same transaction as the create, so that concurrent creates
cannot pass it together. Metadata is bounded as Nova bounds it: 128 items,
keys and values of at most 255 characters.
"""
import json
import threading

import pytest

from apiutil import (IMAGE_REF, assert_hostway_error, assert_nova_error, server_body,
                     unique)


class Quoted:
    """An account with default quotas and a member, on the module's daemon."""

    def __init__(self, world, **quota):
        self.w = world
        self.account = world.d.add_account(name=unique("quota"), unlimited=False)
        if quota:
            world.d.set_quota(self.account, **quota)
        user, pw = world.d.add_user(self.account)
        self.s = world.d.session(user, pw)

    def server(self, pfx="/v2.1", flavor="1", name=None):
        body = server_body(name or unique("q"), flavorRef=flavor)
        return self.s.post(f"{self.w.base}{pfx}/servers", json=body)

    def volume(self, pfx="/v2.1", size=1):
        path = "/os-volumes" if pfx.startswith("/v2.1") else "/volumes"
        return self.s.post(f"{self.w.base}{pfx}{path}", json={"volume": {"size": size}})


def test_default_instances_quota(world):
    q = Quoted(world)
    for _ in range(10):
        assert q.server().status_code == 202
    assert_nova_error(q.server(), 403, "forbidden",
                      "Quota exceeded for instances: Requested 1, but already used 10 of 10 "
                      "instances")
    assert_hostway_error(q.server(pfx=""), 403, "forbidden", "Forbidden",
                         "Quota exceeded for instances: Requested 1, but already used 10 of "
                         "10 instances")
    # a delete frees its place
    sid = q.s.get(f"{world.base}/v2.1/servers").json()["servers"][0]["id"]
    assert q.s.delete(f"{world.base}/v2.1/servers/{sid}").status_code == 204
    assert q.server().status_code == 202


def test_cores_and_ram_follow_the_flavor(world):
    q = Quoted(world, cores=2, ram=4096)
    assert q.server(flavor="3").status_code == 202        # m1.medium: 2 vCPUs, 4096 MiB
    assert_nova_error(q.server(flavor="3"), 403, "forbidden",
                      "Quota exceeded for cores, ram: Requested 2, 4096, but already used 2, "
                      "4096 of 2, 4096 cores, ram")
    assert_nova_error(q.server(flavor="1"), 403, "forbidden",
                      "Quota exceeded for cores, ram: Requested 1, 512, but already used 2, "
                      "4096 of 2, 4096 cores, ram")
    world.d.set_quota(q.account, cores=-1)
    assert_nova_error(q.server(flavor="1"), 403, "forbidden",
                      "Quota exceeded for ram: Requested 512, but already used 4096 of 4096 ram")
    world.d.set_quota(q.account, ram="default")
    assert q.server(flavor="1").status_code == 202


def test_unknown_flavor_is_400(world):
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("f", flavorRef="99"))
    assert_nova_error(r, 400, "badRequest", "Flavor 99 could not be found.")


def test_flavor_shown_from_2_47(world):
    q = Quoted(world)
    sid = q.server(flavor="2").json()["server"]["id"]
    r = q.s.get(f"{world.base}/v2.1/servers/{sid}",
                headers={"OpenStack-API-Version": "compute 2.47"})
    assert r.json()["server"]["flavor"] == {
        "vcpus": 1, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0,
        "original_name": "m1.small", "extra_specs": {}}


def test_volume_quotas(world):
    q = Quoted(world, volumes=2, gigabytes=10)
    assert q.volume(size=4).status_code == 200
    msg = ("Requested volume or snapshot exceeds allowed gigabytes quota. Requested 7G, "
           "quota is 10G and 4G has been consumed.")
    assert_nova_error(q.volume(size=7), 403, "forbidden", msg)
    assert_hostway_error(q.volume(pfx="", size=7), 413, "overLimit", "Quota exceeded", msg)
    assert q.volume(size=5).status_code == 200
    msg = "Maximum number of volumes allowed (2) exceeded for quota 'volumes'."
    assert_nova_error(q.volume(), 403, "forbidden", msg)
    assert_hostway_error(q.volume(pfx=""), 413, "overLimit", "Quota exceeded", msg)


def test_concurrent_creates_cannot_pass_a_quota_together(world):
    q = Quoted(world, instances=5)
    statuses = []
    lock = threading.Lock()

    def create(n):
        s = world.d.session()
        s.headers["Authorization"] = q.s.headers["Authorization"]
        for i in range(3):
            r = s.post(f"{world.base}/v2.1/servers", json=server_body(f"race-{n}-{i}"))
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) == [202, 403], statuses
    assert statuses.count(202) == 5, statuses
    assert len(q.s.get(f"{world.base}/v2.1/servers").json()["servers"]) == 5


# -- GET /limits ----------------------------------------------------------------------

NOVA_21 = ["maxImageMeta", "maxPersonality", "maxPersonalitySize", "maxSecurityGroupRules",
           "maxSecurityGroups", "maxServerMeta", "maxTotalCores", "maxTotalFloatingIps",
           "maxTotalInstances", "maxTotalKeypairs", "maxTotalRAMSize", "maxServerGroups",
           "maxServerGroupMembers", "totalCoresUsed", "totalInstancesUsed", "totalRAMUsed",
           "totalSecurityGroupsUsed", "totalFloatingIpsUsed", "totalServerGroupsUsed"]
NETWORK = {"maxSecurityGroupRules", "maxSecurityGroups", "maxTotalFloatingIps",
           "totalSecurityGroupsUsed", "totalFloatingIpsUsed"}


@pytest.mark.parametrize("version, gone", [
    ("2.1", set()), ("2.35", set()), ("2.36", NETWORK), ("2.39", NETWORK | {"maxImageMeta"}),
    ("2.57", NETWORK | {"maxImageMeta", "maxPersonality", "maxPersonalitySize"}),
    ("2.89", NETWORK | {"maxImageMeta", "maxPersonality", "maxPersonalitySize"}),
])
def test_nova_limits_fields_by_microversion(world, version, gone):
    r = world.sa.get(f"{world.base}/v2.1/limits",
                     headers={"OpenStack-API-Version": f"compute {version}"})
    assert r.status_code == 200, r.text
    body = json.loads(r.text, object_pairs_hook=list)
    assert [k for k, _ in body] == ["limits"]
    limits = dict(body[0][1])
    assert limits["rate"] == []
    keys = [k for k, _ in limits["absolute"]]
    assert keys == [k for k in NOVA_21 if k not in gone], keys


def test_limits_show_quotas_and_usage(world):
    q = Quoted(world, instances=7, cores=9, ram=9000, volumes=3, gigabytes=30)
    assert q.server(flavor="3").status_code == 202
    assert q.volume(size=5).status_code == 200
    a = q.s.get(f"{world.base}/v2.1/limits").json()["limits"]["absolute"]
    assert (a["maxTotalInstances"], a["maxTotalCores"], a["maxTotalRAMSize"]) == (7, 9, 9000)
    assert (a["totalInstancesUsed"], a["totalCoresUsed"], a["totalRAMUsed"]) == (1, 2, 4096)
    assert a["maxServerMeta"] == 128 and a["maxImageMeta"] == 128
    assert "maxTotalVolumes" not in a
    # the Hostway dialect shows the volume quotas it serves too
    h = q.s.get(f"{world.base}/limits").json()["limits"]["absolute"]
    assert (h["maxTotalVolumes"], h["maxTotalVolumeGigabytes"]) == (3, 30)
    assert (h["totalVolumesUsed"], h["totalGigabytesUsed"]) == (1, 5)
    assert h["maxTotalInstances"] == 7
    # and Cinder's own
    c = q.s.get(f"{world.base}/v3/{q.account}/limits").json()["limits"]["absolute"]
    assert (c["maxTotalVolumes"], c["maxTotalVolumeGigabytes"]) == (3, 30)
    assert (c["totalVolumesUsed"], c["totalGigabytesUsed"]) == (1, 5)


def test_default_limits(world):
    q = Quoted(world)
    a = q.s.get(f"{world.base}/limits").json()["limits"]["absolute"]
    assert (a["maxTotalInstances"], a["maxTotalCores"], a["maxTotalRAMSize"]) == (10, 20, 51200)
    assert (a["maxTotalVolumes"], a["maxTotalVolumeGigabytes"]) == (10, 1000)


def test_limits_of_another_account(world):
    q = Quoted(world, instances=3)
    r = world.admin.get(f"{world.base}/v2.1/limits?tenant_id={q.account}")
    assert r.json()["limits"]["absolute"]["maxTotalInstances"] == 3
    # given twice, the last counts (webob's req.GET.get, in Nova)
    r = world.admin.get(f"{world.base}/v2.1/limits?tenant_id=no-such&tenant_id={q.account}")
    assert r.json()["limits"]["absolute"]["maxTotalInstances"] == 3
    r = world.sa.get(f"{world.base}/v2.1/limits?tenant_id={q.account}")
    assert_nova_error(r, 403, "forbidden",
                      "Policy doesn't allow os_compute_api:limits:other_project to be performed.")
    r = world.sa.get(f"{world.base}/v2.1/limits?bogus=1",
                     headers={"OpenStack-API-Version": "compute 2.75"})
    assert_nova_error(r, 400, "badRequest",
                      "Additional properties are not allowed ('bogus' was unexpected)")


def test_account_quota_cli(world):
    account = world.d.add_account(name=unique("cli-quota"), unlimited=False)
    out = world.d.set_quota(account)
    assert out.splitlines() == [
        "resource        limit     in use",
        "instances          10          0",
        "cores              20          0",
        "ram             51200          0",
        "volumes            10          0",
        "gigabytes        1000          0",
    ], out
    out = world.d.set_quota(account, instances=-1, gigabytes=5)
    assert "instances          -1" in out and "gigabytes           5" in out, out
    out = world.d.set_quota(account, instances="default")
    assert "instances          10" in out and "gigabytes           5" in out, out
    for bad in (["--instances", "-2"], ["--ram", "lots"], ["--cores", ""]):
        p = world.d.cli("account", "quota", account, *bad, check=False)
        assert p.returncode == 2 and p.stderr.startswith("attachd: account quota: "), p.stderr
    p = world.d.cli("account", "quota", "no-such-account", check=False)
    assert p.returncode == 2 and "unknown account" in p.stderr, p.stderr


# -- metadata -------------------------------------------------------------------------

def test_server_metadata_items_are_bounded(world):
    md = {f"k{i}": "v" for i in range(129)}
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("md", metadata=md))
    assert_nova_error(r, 403, "forbidden", "Maximum number of metadata items exceeds 128")
    r = world.sa.post(f"{world.base}/servers", json=server_body("md", metadata=md))
    assert_hostway_error(r, 403, "forbidden", "Forbidden",
                         "Maximum number of metadata items exceeds 128")
    md.popitem()
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("md", metadata=md))
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("metadata, message", [
    ({"k": 1}, "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
    ({"k": "v" * 256}, f"Invalid input for field/attribute k. Value: {'v' * 256}. "
                       f"'{'v' * 256}' is too long"),
    ({"bad/key": "v"}, "Invalid input for field/attribute metadata. Value: {'bad/key': 'v'}. "
                       "'bad/key' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"),
    ({"k" * 256: "v"}, f"Invalid input for field/attribute metadata. Value: {{'{'k' * 256}': "
                       f"'v'}}. '{'k' * 256}' does not match any of the regexes: "
                       "'^[a-zA-Z0-9-_:. ]{1,255}$'"),
])
def test_server_metadata_schema(world, metadata, message):
    r = world.sa.post(f"{world.base}/v2.1/servers", json=server_body("md", metadata=metadata))
    assert_nova_error(r, 400, "badRequest", message)


def test_volume_metadata_is_bounded(world):
    base = world.base
    md = {f"k{i}": "v" for i in range(129)}
    r = world.sa.post(f"{base}/v2.1/os-volumes", json={"volume": {"size": 1, "metadata": md}})
    assert_nova_error(r, 403, "forbidden", "Maximum number of metadata items exceeds 128")
    r = world.sa.post(f"{base}/volumes", json={"volume": {"size": 1, "metadata": md}})
    assert_hostway_error(r, 403, "forbidden", "Forbidden",
                         "Maximum number of metadata items exceeds 128")
    r = world.sa.post(f"{base}/v2.1/os-volumes",
                      json={"volume": {"size": 1, "metadata": {"k": "v" * 256}}})
    assert_nova_error(r, 400, "badRequest",
                      "Invalid metadata: Value for metadata key: k has more than 255 characters.")
    r = world.sa.post(f"{base}/v2.1/os-volumes",
                      json={"volume": {"size": 1, "metadata": {"k": 5}}})
    assert_nova_error(r, 400, "badRequest",
                      "Invalid metadata: Value for metadata key: k is not a string or unicode")
    r = world.sa.post(f"{base}/v2.1/os-volumes", json={"volume": {"size": 1, "metadata": {"": "v"}}})
    assert_nova_error(r, 400, "badRequest",
                      "Invalid metadata: Metadata key:  has a minimum character requirement of 1.")
    md = {f"k{i}": "v" * 255 for i in range(128)}
    r = world.sa.post(f"{base}/v2.1/os-volumes", json={"volume": {"size": 1, "metadata": md}})
    assert r.status_code == 200, r.text
    assert r.json()["volume"]["metadata"] == md


def test_long_volume_metadata_key_is_shown_by_characters(world):
    """A key over 255 characters is shown as its first 255 characters, never cut
    inside one (it was cut at byte 255: fuzz/crashes/fuzz_json-volume-metadata-key-cut)."""
    for key in ("\u00e9" * 256, "k" * 300, "\U0001F600" * 256):
        message = (f"Invalid metadata: Metadata key: {key[:255]}... has more than 255 "
                   "characters.")
        body = {"volume": {"size": 1, "metadata": {key: "v"}}}
        r = world.sa.post(f"{world.base}/v2.1/os-volumes", json=body)
        assert_nova_error(r, 400, "badRequest", message)
        r = world.sa.post(f"{world.base}/volumes", json=body)
        assert_hostway_error(r, 400, "badRequest", "Bad request", message)


# -- the size of an answer ----------------------------------------------------------------

BIG = "\U0001F600" * 255             # 255 characters, 1020 bytes of UTF-8


def big_metadata():
    return {f"k{i:03d}": BIG for i in range(128)}


def test_large_pages_are_cut_with_a_next_link(world):
    """A page whose answer would pass 4 MiB is cut at an item: the servers
    that did not fit come with the next link, and following the links gives
    every server once. (128 metadata items of 255 four-byte characters make
    a server about 130 KB: 40 of them do not fit one answer.)"""
    account = world.d.add_account(name=unique("big"))
    user, pw = world.d.add_user(account)
    s = world.d.session(user, pw)
    made = set()
    for i in range(40):
        r = s.post(f"{world.base}/v2.1/servers",
                   json=server_body(f"big-{i}", metadata=big_metadata()))
        assert r.status_code == 202, r.text
        made.add(r.json()["server"]["id"])
    seen, pages = [], 0
    url = f"{world.base}/v2.1/servers/detail"
    while url:
        r = s.get(url)
        assert r.status_code == 200
        assert len(r.content) <= 5 * 1024 * 1024, len(r.content)
        body = r.json()
        seen += [x["id"] for x in body["servers"]]
        pages += 1
        links = body.get("servers_links", [])
        url = links[0]["href"] if links else None
        assert pages < 10
    assert pages >= 2, "the first answer was not cut"
    assert len(seen) == len(set(seen)) and set(seen) == made


def test_large_volume_pages_are_cut_with_a_next_link(world):
    account = world.d.add_account(name=unique("bigvol"))
    user, pw = world.d.add_user(account)
    s = world.d.session(user, pw)
    made = set()
    for i in range(40):
        r = s.post(f"{world.base}/volumes",
                   json={"volume": {"size": 1, "metadata": big_metadata()}})
        assert r.status_code == 200, r.text
        made.add(r.json()["volume"]["id"])
    seen, url, pages = [], f"{world.base}/volumes", 0
    while url:
        body = s.get(url).json()
        seen += [v["id"] for v in body["volumes"]]
        pages += 1
        links = body.get("volumes_links", [])
        url = links[0]["href"] if links else None
        assert pages < 10
    assert pages >= 2
    assert len(seen) == len(set(seen)) and set(seen) == made
