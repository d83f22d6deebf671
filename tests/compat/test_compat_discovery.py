"""Version discovery exactly as keystoneauth1 (used by every client) reads it.

When these documents are incomplete the sdk does not fail: it silently stops
sending microversions, and the other suites then fail in confusing ways. These
tests say what is wrong directly.
"""
from keystoneauth1 import discover

from compat_util import keystone_session


def test_compute_v21_document(cloud):
    sess = keystone_session(cloud.user, cloud.password, cloud.compute)
    disc = discover.Discover(sess, cloud.compute)
    data = disc.version_data()
    assert len(data) == 1, data
    v = data[0]
    assert v["version"] == (2, 1)
    assert v["min_microversion"] == (2, 1)
    assert v["max_microversion"] == (2, 89)
    assert v["status"] == "CURRENT"
    assert v["url"].rstrip("/") == cloud.compute


def test_compute_root_document_lists_v21(cloud):
    sess = keystone_session(cloud.user, cloud.password, cloud.base + "/")
    data = discover.Discover(sess, cloud.base + "/").version_data()
    v21 = [v for v in data if v["version"] == (2, 1)]
    assert len(v21) == 1, data
    assert v21[0]["max_microversion"] == (2, 89)
    assert v21[0]["url"].rstrip("/") == cloud.compute


def test_discovery_needs_no_credentials(cloud):
    import requests
    # docs/api.md, decision D6; /v3 may ask for credentials (keystoneauth then retries with them)
    for path in ("/", "/v2.1", "/v2.1/"):
        r = requests.get(cloud.base + path, headers={"Accept": "application/json"}, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text)


def test_project_scoped_endpoint(cloud):
    """http://HOST/v2.1/{account} works too: keystoneauth strips the account
    for discovery and keeps it in the request URLs."""
    from compat_util import sdk_connection
    import openstack
    sid = cloud.server(name="scoped")
    conn = openstack.connect(auth_type="http_basic", load_yaml_config=False, load_envvars=False,
                             auth={"username": cloud.user, "password": cloud.password,
                                   "endpoint": f"{cloud.compute}/{cloud.account}"})
    data = conn.compute.get_endpoint_data()
    assert data.max_microversion == (2, 89)
    assert [s.id for s in conn.compute.servers()] == [sid]
    assert sdk_connection(cloud).compute.get_server(sid).name == "scoped"


def test_block_storage_v3_document(cloud):
    """`server add/remove volume` need GET /v3 (then the project-scoped URLs)."""
    sess = keystone_session(cloud.user, cloud.password, cloud.block_storage)
    data = discover.Discover(sess, cloud.base + "/v3").version_data()
    v3 = [v for v in data if v["version"][0] == 3]
    assert len(v3) == 1, data
    assert v3[0]["status"] in ("CURRENT", "SUPPORTED")
    assert v3[0]["url"].rstrip("/") == cloud.base + "/v3"
