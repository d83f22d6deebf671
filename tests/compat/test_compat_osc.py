"""The `openstack` CLI (python3-openstackclient 6.0) against attachd, issue 4.

One clouds.yaml names attachd alone (auth_type http_basic, the compute
endpoint, and block_storage_endpoint_override pointing at attachd's Cinder v3
subset); HOME is empty, so no other configuration is read. `server add
volume` and `server remove volume` look the volume up in the block-storage
API first (GET /v3 discovery, GET /v3/{account}/volumes/{name_or_id}, then
GET /v3/{account}/volumes?name=...).
"""
import pytest

# Names with characters that are not valid ids make the look-up by name
# (a 404 on GET .../{name}, then the list) certain to be exercised.
SERVER = "cli server"
VOLUME = "cli volume"


def test_server_list(cloud, osc):
    sid = cloud.server(name=SERVER)
    rows = osc.json("server", "list")
    assert [(r["ID"], r["Name"], r["Status"]) for r in rows] == [(sid, SERVER, "ACTIVE")]
    # without the (best-effort) image and flavor name look-ups
    rows = osc.json("server", "list", "--no-name-lookup")
    assert [(r["ID"], r["Name"], r["Status"]) for r in rows] == [(sid, SERVER, "ACTIVE")]
    rows = osc.json("server", "list", "--long")
    assert [(r["ID"], r["Name"], r["Status"]) for r in rows] == [(sid, SERVER, "ACTIVE")]


def test_server_list_filters(cloud, osc):
    """`server list --status`, `--flavor`, `--vm-state`, `--power-state`,
    `--changes-since` and `--all-projects` send Nova's filters, and attachd
    applies them."""
    up = cloud.server(name="up")
    down = cloud.server(name="down")
    r = cloud.http().post(f"{cloud.compute}/servers/{down}/action", json={"os-stop": None})
    assert r.status_code == 202, r.text

    def listed(*args):
        return [(row["ID"], row["Status"]) for row in osc.json("server", "list", *args)]

    assert listed("--status", "SHUTOFF") == [(down, "SHUTOFF")]
    assert listed("--status", "ACTIVE") == [(up, "ACTIVE")]
    # --vm-state and --power-state are a member's from 2.83, --changes-since always
    v283 = ("--os-compute-api-version", "2.83")
    assert listed(*v283, "--vm-state", "stopped") == [(down, "SHUTOFF")]
    assert listed(*v283, "--power-state", "running") == [(up, "ACTIVE")]
    assert sorted(listed("--changes-since", "2000-01-01T00:00:00Z")) == \
        sorted([(up, "ACTIVE"), (down, "SHUTOFF")])
    assert listed("--changes-since", "9999-01-01T00:00:00Z") == []
    flavor = cloud.http().get(f"{cloud.compute}/servers/{up}").json()["server"]["flavor"]["id"]
    assert sorted(listed("--flavor", flavor)) == sorted([(up, "ACTIVE"), (down, "SHUTOFF")])
    # an admin's every project: another account's server too; a member's
    # --all-projects is Nova's 403
    other = cloud.d.add_account("elsewhere")
    theirs = cloud.d.add_server(other, name="theirs")
    admin = ("--os-username", cloud.admin_user, "--os-password", cloud.admin_password)
    rows = osc.json(*admin, "server", "list", "--all-projects")
    assert {row["ID"] for row in rows} == {up, down, theirs}, rows
    assert {row["ID"] for row in osc.json(*admin, "server", "list")} == {up, down}
    p = osc.run("server", "list", "--all-projects", check=False)
    assert p.returncode == 1 and "Policy doesn't allow os_compute_api:servers:detail:" \
        "get_all_tenants to be performed. (HTTP 403)" in p.stderr, (p.stdout, p.stderr)


@pytest.mark.parametrize("version", [None, "2.79", "2.89"], ids=lambda v: v or "default")
def test_server_show(cloud, osc, version):
    sid = cloud.server(name=SERVER)
    vid = cloud.volume(name=VOLUME)
    args = ["--os-compute-api-version", version] if version else []
    by_name = osc.json(*args, "server", "show", SERVER)
    assert (by_name["id"], by_name["name"], by_name["status"]) == (sid, SERVER, "ACTIVE")
    assert by_name["project_id"] == cloud.account
    assert by_name["volumes_attached"] == []
    by_id = osc.json(*args, "server", "show", sid)
    assert by_id["id"] == sid

    cloud.http().post(f"{cloud.compute}/servers/{sid}/os-volume_attachments",
                      json={"volumeAttachment": {"volumeId": vid}}).raise_for_status()
    shown = osc.json(*args, "server", "show", sid)
    assert [v["id"] for v in shown["volumes_attached"]] == [vid]


@pytest.mark.parametrize("volume_ref", ["name", "id"])
def test_add_list_remove_volume(cloud, osc, volume_ref):
    sid = cloud.server(name=SERVER)
    vid = cloud.volume(name=VOLUME)
    ref = VOLUME if volume_ref == "name" else vid
    assert osc.json("server", "volume", "list", SERVER) == []

    added = osc.json("server", "add", "volume", SERVER, ref, "--device", "/dev/vdb")
    assert (added["Server ID"], added["Volume ID"], added["Device"]) == (sid, vid, "/dev/vdb")
    assert cloud.attachments(sid) == {vid: "/dev/vdb"}
    assert cloud.volume_state(vid) == ("in-use", [sid])

    rows = osc.json("server", "volume", "list", SERVER)
    assert [(r["ID"], r["Device"], r["Server ID"], r["Volume ID"]) for r in rows] == [
        (vid, "/dev/vdb", sid, vid)]

    osc.run("server", "remove", "volume", SERVER, ref)
    assert osc.json("server", "volume", "list", SERVER) == []
    assert cloud.attachments(sid) == {}
    assert cloud.volume_state(vid) == ("available", [])

    # removing it again fails cleanly (404 from attachd)
    p = osc.run("server", "remove", "volume", SERVER, ref, check=False)
    assert p.returncode != 0
    assert "404" in p.stderr or "not" in p.stderr.lower(), p.stderr


def test_add_volume_without_device(cloud, osc):
    """OSC sends `"device": null` when --device is not given; attachd picks a
    device."""
    sid = cloud.server(name=SERVER)
    vid = cloud.volume(name=VOLUME)
    added = osc.json("server", "add", "volume", SERVER, VOLUME)
    assert added["Volume ID"] == vid
    assert added["Device"], added
    assert cloud.attachments(sid) == {vid: added["Device"]}
    osc.run("server", "remove", "volume", SERVER, VOLUME)
    assert cloud.volume_state(vid) == ("available", [])


@pytest.mark.parametrize("version", ["2.1", "2.79", "2.89"])
def test_volume_list_columns_by_microversion(cloud, osc, version):
    sid = cloud.server(name=SERVER)
    vid = cloud.volume(name=VOLUME)
    added = osc.json("--os-compute-api-version", version, "server", "add", "volume", SERVER, VOLUME,
                     "--device", "/dev/vdc")
    assert (added["Volume ID"], added["Device"]) == (vid, "/dev/vdc")
    rows = osc.json("--os-compute-api-version", version, "server", "volume", "list", SERVER)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["Server ID"], row["Volume ID"], row["Device"]) == (sid, vid, "/dev/vdc")
    if version == "2.1":
        assert set(row) == {"ID", "Device", "Server ID", "Volume ID"}
    if version == "2.79":
        assert row["Tag"] is None and row["Delete On Termination?"] is False
    if version == "2.89":
        assert "ID" not in row
        assert row["Attachment ID"] and row["BlockDeviceMapping UUID"]
    osc.run("--os-compute-api-version", version, "server", "remove", "volume", SERVER, VOLUME)
    assert cloud.attachments(sid) == {}


def test_block_storage_subset_is_what_the_cli_reads(cloud):
    """The Cinder v3 pieces the CLI's volume look-up needs, as the SDK's
    block-storage proxy (which the CLI uses) sees them."""
    from compat_util import sdk_connection
    vid = cloud.volume(name=VOLUME, size=3)
    conn = sdk_connection(cloud)
    data = conn.block_storage.get_endpoint_data()
    assert data is not None and data.api_version == (3, 0), data
    by_id = conn.block_storage.get_volume(vid)
    assert (by_id.id, by_id.name, by_id.size, by_id.status) == (vid, VOLUME, 3, "available")
    assert conn.block_storage.find_volume(VOLUME, ignore_missing=False).id == vid
    assert [v.id for v in conn.block_storage.volumes(details=False)] == [vid]
    assert [v.id for v in conn.block_storage.volumes(details=True)] == [vid]
