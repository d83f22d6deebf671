"""Version discovery and microversion negotiation (docs/api.md: "Version
discovery", and "Microversions" under "Common rules"): issue 2 item 7."""
import pytest

from apiutil import MAX_MICROVERSION, assert_json, assert_nova_error, assert_request_ids, unique

HOST = "api.example.test:8774"


def _links(obj):
    return {l["rel"]: l for l in obj["links"]}


@pytest.mark.parametrize("host", [None, HOST])
def test_root_lists_v21(world, host):
    headers = {"Host": host} if host else {}
    r = world.anon.get(world.base + "/", headers=headers)
    assert r.status_code == 200, r.text
    assert_request_ids(r)
    body = assert_json(r)
    v21 = [v for v in body["versions"] if v["id"] == "v2.1"]
    assert len(v21) == 1, body
    v = v21[0]
    assert v["status"] == "CURRENT"
    assert v["version"] == MAX_MICROVERSION
    assert v["min_version"] == "2.1"
    assert v["updated"] == "2013-07-23T11:33:21Z"
    expect_host = host or f"127.0.0.1:{world.d.port}"
    assert _links(v)["self"]["href"] == f"http://{expect_host}/v2.1/", v["links"]


@pytest.mark.parametrize("path", ["/v2.1", "/v2.1/"])
@pytest.mark.parametrize("host", [None, HOST])
def test_v21_document(world, path, host):
    headers = {"Host": host} if host else {}
    r = world.anon.get(world.base + path, headers=headers)
    assert r.status_code == 200, r.text
    assert_request_ids(r)
    v = assert_json(r)["version"]
    assert v["id"] == "v2.1"
    assert v["status"] == "CURRENT"
    assert v["version"] == MAX_MICROVERSION
    assert v["min_version"] == "2.1"
    assert v["updated"] == "2013-07-23T11:33:21Z"
    expect_host = host or f"127.0.0.1:{world.d.port}"
    links = _links(v)
    assert links["self"]["href"] == f"http://{expect_host}/v2.1/"
    assert links["describedby"]["type"] == "text/html"
    assert v["media-types"] == [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]


def _echo(r):
    return (r.headers.get("OpenStack-API-Version"), r.headers.get("X-OpenStack-Nova-API-Version"))


def _assert_vary(r):
    vary = [t.strip().lower() for t in r.headers.get("Vary", "").split(",")]
    assert "openstack-api-version" in vary and "x-openstack-nova-api-version" in vary, r.headers


@pytest.mark.parametrize("headers,expect", [
    ({}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.1"}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.60"}, "2.60"),
    ({"OpenStack-API-Version": "compute 2.89"}, "2.89"),
    ({"OpenStack-API-Version": "compute latest"}, MAX_MICROVERSION),
    ({"X-OpenStack-Nova-API-Version": "2.53"}, "2.53"),
    ({"X-OpenStack-Nova-API-Version": "latest"}, MAX_MICROVERSION),
    ({"OpenStack-API-Version": "compute 2.70", "X-OpenStack-Nova-API-Version": "2.3"}, "2.70"),
    ({"OpenStack-API-Version": "volume 3.0, compute 2.5"}, "2.5"),
    ({"OpenStack-API-Version": "volume 3.0"}, "2.1"),
])
@pytest.mark.parametrize("path", ["/v2.1/servers", "/v2.1/{acct}/servers"])
def test_microversion_negotiated_and_echoed(world, headers, expect, path):
    r = world.sa.get(world.base + path.format(acct=world.a), headers=headers)
    assert r.status_code == 200, r.text
    assert _echo(r) == (f"compute {expect}", expect), r.headers
    _assert_vary(r)


def test_microversion_echoed_on_errors_too(world):
    r = world.sa.get(world.base + "/v2.1/servers/none", headers={"OpenStack-API-Version": "compute 2.60"})
    assert_nova_error(r, 404, "itemNotFound", "Instance none could not be found.")
    assert _echo(r) == ("compute 2.60", "2.60"), r.headers
    _assert_vary(r)


@pytest.mark.parametrize("value", ["2", "2.x", "two", "2.01", "02.1", "2.1.1", "2.", ".1", "-2.1"])
@pytest.mark.parametrize("header", ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"])
def test_malformed_microversion_is_400(world, header, value):
    hv = f"compute {value}" if header == "OpenStack-API-Version" else value
    r = world.sa.get(world.base + "/v2.1/servers", headers={header: hv})
    assert_nova_error(r, 400, "badRequest",
                      f"API Version String {value} is of invalid format. "
                      "Must be of format MajorNum.MinorNum.")


@pytest.mark.parametrize("value", ["2.90", "2.104", "3.0", "1.1", "2.0", "1.0", "10.5"])
@pytest.mark.parametrize("header", ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"])
def test_out_of_range_microversion_is_406(world, header, value):
    hv = f"compute {value}" if header == "OpenStack-API-Version" else value
    r = world.sa.get(world.base + "/v2.1/servers", headers={header: hv})
    assert_nova_error(r, 406, "computeFault",
                      f"Version {value} is not supported by the API. "
                      f"Minimum is 2.1 and maximum is {MAX_MICROVERSION}.")


def test_microversion_applies_to_writes(world):
    r = world.sa.post(world.base + "/v2.1/servers",
                      json={"server": {"name": unique("mv"), "flavorRef": "1",
                                       "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}},
                      headers={"OpenStack-API-Version": "compute 2.37"})
    # 2.37 makes `networks` required in Nova; either way the version is echoed
    assert _echo(r) == ("compute 2.37", "2.37"), (r.status_code, r.headers)
    r = world.sa.post(world.base + "/v2.1/servers", json={},
                      headers={"OpenStack-API-Version": "compute 9.0"})
    assert r.status_code == 406, r.text


def test_hostway_has_no_microversions(world):
    """No microversions on the Hostway paths (docs/api.md, decision D2); a
    header there changes nothing."""
    for value in ("compute 9.9", "compute 2.x"):
        r = world.sa.get(world.base + "/servers", headers={"OpenStack-API-Version": value})
        assert r.status_code == 200, (value, r.status_code, r.text)
