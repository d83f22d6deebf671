"""Volume attachments, /servers/{server_id}/os-volume_attachments (issue 3;
the os-volume_attachments sections of both dialects in docs/api.md, and
docs/api.md, decisions D2-D4).

Nova checks each operation's request in a fixed order (nova's
api/openstack/compute/volume_attachments.py and compute/api.py); numbered
from 1 in that order, those checks are the rows below, one case per row that
can occur here, run on all four prefixes (docs/api.md, decision D1: Hostway
`/` and `/accounts/{id}/flexcloud`, Nova `/v2.1` and `/v2.1/{project_id}`). A
refused request is checked three ways: the status, the fault (Nova: name and
exact message; Hostway: name, message, details and errorid in that order,
details carrying Nova's reason, a 404 exactly as Hostway's
DetachVolumeFromServer page shows it in docs/api.md), and that nothing
changed (the servers' attachments and volumes_attached and the volumes'
status and attachments are read again, as the admin, and compared).

Rows that cannot occur in attachd are listed, with the reason, next to each
table and have no case.
"""
import re

import pytest

from apiutil import UNAUTHORIZED_BODY, assert_unauthorized
from conftest_volumes import (DEVICE_PATTERN, KINDS, NOVA_KINDS, UUID4, Row, assert_empty,
                              assert_fault, cases, dialect, e, e_not_digits, e_regex, make_env,
                              run_refused, uid)


@pytest.fixture(scope="module")
def vol_env(tmp_path_factory):
    yield from make_env(tmp_path_factory)


# -- set-ups ------------------------------------------------------------------------

def s_plain(env):
    sid, vid = env.server(), env.volume()
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_unknown_server(env):
    sid, vid = uid("no-such-server"), env.volume()
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_foreign_server(env):
    sid, vid = env.server(who="b"), env.volume()
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_unknown_volume(env):
    sid, vid = env.server(), uid("no-such-volume")
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_foreign_volume(env):
    sid, vid = env.server(), env.volume(who="b")
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_unknown_both(env):
    sid, vid = uid("no-such-server"), uid("no-such-volume")
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_locked_by_admin(env):
    ctx = s_plain(env)
    env.lock_as_admin(ctx["sid"])
    return ctx


def s_locked_by_owner(env):
    ctx = s_plain(env)
    env.action(ctx["sid"], "lock")
    return ctx


def s_suspended(env):
    ctx = s_plain(env)
    env.action(ctx["sid"], "suspend")
    return ctx


def s_locked_suspended(env):
    ctx = s_plain(env)
    env.action(ctx["sid"], "suspend")
    env.lock_as_admin(ctx["sid"])
    return ctx


def s_suspended_unknown_volume(env):
    ctx = s_unknown_volume(env)
    env.action(ctx["sid"], "suspend")
    return ctx


def s_attached(env):
    ctx = s_plain(env)
    env.attach(ctx["sid"], ctx["vid"])
    return ctx


def s_attached_elsewhere(env):
    ctx = s_plain(env)
    other = env.server()
    env.attach(other, ctx["vid"])
    ctx["other"] = other
    ctx["servers"].append(other)
    return ctx


def s_device_in_use(env):
    ctx = s_plain(env)
    first = env.volume()
    env.attach(ctx["sid"], first, device="/dev/vdb")
    ctx["volumes"].append(first)
    return ctx


def s_device_in_use_and_attached(env):
    ctx = s_attached_elsewhere(env)
    first = env.volume()
    env.attach(ctx["sid"], first, device="/dev/vdb")
    ctx["volumes"].append(first)
    return ctx


def s_attached_locked(env):
    ctx = s_attached(env)
    env.lock_as_admin(ctx["sid"])
    return ctx


def s_attached_locked_by_owner(env):
    ctx = s_attached(env)
    env.action(ctx["sid"], "lock")
    return ctx


def s_attached_suspended(env):
    ctx = s_attached(env)
    env.action(ctx["sid"], "suspend")
    return ctx


def s_attached_locked_suspended(env):
    ctx = s_attached(env)
    env.action(ctx["sid"], "suspend")
    env.lock_as_admin(ctx["sid"])
    return ctx


def s_root(env):
    vid = env.volume()
    sid = env.boot_from_volume(vid)
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


def s_root_locked(env):
    ctx = s_root(env)
    env.lock_as_admin(ctx["sid"])
    return ctx


def s_two_attached(env):
    """A server with volume vid attached and a second, available volume new."""
    ctx = s_attached(env)
    ctx["new"] = env.volume()
    ctx["volumes"].append(ctx["new"])
    return ctx


def s_two_attached_new_in_use(env):
    ctx = s_attached(env)
    other = env.server()
    new = env.volume()
    env.attach(other, new)
    ctx.update(new=new, other=other)
    ctx["servers"].append(other)
    ctx["volumes"].append(new)
    return ctx


def s_swap_smaller(env):
    sid, vid, new = env.server(), env.volume(size=2), env.volume(size=1)
    env.attach(sid, vid)
    return {"sid": sid, "vid": vid, "new": new, "servers": [sid], "volumes": [vid, new]}


def s_two_attached_stopped(env):
    ctx = s_two_attached(env)
    env.action(ctx["sid"], "os-stop")
    return ctx


def s_two_available(env):
    """A server and two available volumes, neither attached."""
    ctx = s_plain(env)
    ctx["new"] = env.volume()
    ctx["volumes"].append(ctx["new"])
    return ctx


def s_tagged(env):
    sid, vid = env.server(), env.volume()
    env.attach(sid, vid, mv="2.79", tag="data", delete_on_termination=False)
    return {"sid": sid, "vid": vid, "servers": [sid], "volumes": [vid]}


# -- expectations ---------------------------------------------------------------------

def e_instance_404():
    return e(404, lambda c: f"Instance {c['sid']} could not be found.")


def e_volume_404():
    return e(404, lambda c: f"Volume {c['vid']} could not be found.")


def e_not_attached():
    return e(404, lambda c: f"Instance {c['sid']} is not attached to volume {c['vid']}")


def e_locked():
    return e(409, lambda c: f"Instance {c['sid']} is locked")


def e_state(action, state):
    return e(409, lambda c: (f"Cannot '{action}' instance {c['sid']} "
                             f"while it is in vm_state {state}"))


def e_already_attached(on):
    def f(kind, c):
        msg = f"Invalid volume: volume {c['vid']} is already attached to instances: {c[on]}"
        if dialect(kind) == "nova":
            return 400, msg, None
        return 409, msg, "VolumeAlreadyAttached"
    return f


def e_invalid(field, value_repr, msg):
    return e(400, f"Invalid input for field/attribute {field}. Value: {value_repr}. {msg}")


def e_extra(key, value_repr_fn):
    return e(400, lambda c: (f"Invalid input for field/attribute volumeAttachment. Value: "
                             f"{value_repr_fn(c)}. Additional properties are not allowed "
                             f"('{key}' was unexpected)"))


def e_by_dialect(nova, hostway):
    return lambda kind, c: (nova if dialect(kind) == "nova" else hostway)(kind, c)


SWAP_POLICY = "Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be performed."


def attachments_path(c):
    return f"/servers/{c['sid']}/os-volume_attachments"


def attachment_path(c):
    return f"/servers/{c['sid']}/os-volume_attachments/{c['vid']}"


# =====================================================================================
# List: GET /servers/{server_id}/os-volume_attachments
#
# Rows not covered: "policy 403" cannot occur (attachd has no policy file;
# every member may list the attachments of its own servers). The 401 row is
# test_list_unauthorized.
# =====================================================================================

LIST_ROWS = [
    Row("unknown-server", s_unknown_server, e_instance_404()),
    Row("other-accounts-server", s_foreign_server, e_instance_404()),
    # limit/offset: Nova's query schema checks every value given (digits, at
    # least one), limit before offset, and before any unknown parameter.
    Row("limit-negative", s_attached, e_not_digits("limit", "-1"), query="?limit=-1"),
    Row("limit-not-integer", s_attached, e_not_digits("limit", "abc"), query="?limit=abc"),
    Row("limit-empty", s_attached, e_not_digits("limit", ""), query="?limit="),
    Row("limit-any-value", s_attached, e_not_digits("limit", "x"), query="?limit=2&limit=x"),
    Row("offset-negative", s_attached, e_not_digits("offset", "-1"), query="?offset=-1"),
    Row("offset-not-integer", s_attached, e_not_digits("offset", "1.5"), query="?offset=1.5"),
    Row("limit-then-offset", s_attached, e_not_digits("limit", "y"), query="?offset=x&limit=y"),
    Row("limit-before-unknown-2.75", s_attached, e_not_digits("limit", "x"),
        mv="2.75", query="?foo=1&limit=x", kinds=NOVA_KINDS),
    # a last newline passes the schema's '^[0-9]*$'; Python's int() then
    # finds no number in a newline alone, after every schema check
    Row("limit-newline", s_attached, e(400, "Invalid input received: limit must be an integer"),
        query="?limit=%0A"),
    Row("offset-newline", s_attached,
        e(400, "Invalid input received: offset must be an integer"), query="?offset=%0A"),
    Row("newline-after-unknown-2.75", s_attached,
        e(400, "Additional properties are not allowed ('foo' was unexpected)"),
        mv="2.75", query="?limit=%0A&foo=1", kinds=NOVA_KINDS),
    # unknown query parameters: 400 from 2.75 (Nova dialect only: Hostway has
    # no microversions and ignores them, see test_list_unknown_query_ignored).
    Row("unknown-query-2.75", s_attached,
        e(400, "Additional properties are not allowed ('foo' was unexpected)"),
        mv="2.75", query="?foo=1", kinds=NOVA_KINDS),
    # jsonschema names every unknown parameter once, sorted
    Row("unknown-queries-2.75", s_attached,
        e(400, "Additional properties are not allowed ('a', 'b' were unexpected)"),
        mv="2.75", query="?b=1&limit=1&a=2&b=3", kinds=NOVA_KINDS),
]


@pytest.mark.parametrize("row,kind", cases(LIST_ROWS))
def test_list_refused(vol_env, row, kind):
    run_refused(vol_env, row, kind, "GET", attachments_path)


@pytest.mark.parametrize("kind", KINDS)
def test_list_unauthorized(vol_env, kind):
    sid = vol_env.server()
    url = vol_env.url(kind, f"/servers/{sid}/os-volume_attachments")
    user, _ = vol_env.victim()
    assert_unauthorized(vol_env.d.session(user, "wrong-password").get(url))
    assert_unauthorized(vol_env.d.session().get(url))
    # before any lookup (docs/api.md, decision D6), so an unknown server is 401 too
    url = vol_env.url(kind, f"/servers/{uid('nope')}/os-volume_attachments")
    r = vol_env.d.session(user, "wrong-password").get(url)
    assert r.status_code == 401 and r.content == UNAUTHORIZED_BODY


@pytest.mark.parametrize("kind", KINDS)
def test_list_unknown_query_ignored_before_2_75(vol_env, kind):
    ctx = s_attached(vol_env)
    for mv in (None, "2.74"):
        r = vol_env.req(kind, "GET", attachments_path(ctx) + "?foo=1&sort=x", mv=mv)
        assert r.status_code == 200, r.text
        assert [a["volumeId"] for a in r.json()["volumeAttachments"]] == [ctx["vid"]]


@pytest.mark.parametrize("kind", KINDS)
def test_list_limit_offset(vol_env, kind):
    env = vol_env
    sid = env.server()
    vids = [env.volume() for _ in range(5)]
    for v in vids:
        env.attach(sid, v)
    ctx = {"sid": sid}

    def listed(q):
        r = env.req(kind, "GET", attachments_path(ctx) + q)
        assert r.status_code == 200, r.text
        return [a["volumeId"] for a in r.json()["volumeAttachments"]]

    everything = listed("")
    assert sorted(everything) == sorted(vids)
    assert listed("?limit=2") == everything[:2]
    assert listed("?limit=2&offset=2") == everything[2:4]
    assert listed("?offset=4") == everything[4:]
    assert listed("?offset=5") == []
    assert listed("?offset=99") == []
    # as Nova: [offset:offset+min(limit or max_limit, max_limit)], so 0 means "no limit"
    assert listed("?limit=0") == everything
    assert listed("?limit=0&offset=3") == everything[3:]
    assert listed("?limit=1000") == everything
    # Python's int() reads any number of digits
    assert listed("?limit=99999999999999999999") == everything
    assert listed("?limit=00000000000000000002") == everything[:2]
    assert listed("?offset=99999999999999999999") == []
    # given twice, the last counts (webob's req.GET, in Nova)
    assert listed("?limit=1&limit=2") == everything[:2]
    assert listed("?offset=0&offset=3&limit=9&limit=1") == everything[3:4]


# Representation by microversion (docs/api.md, the Nova dialect's attachment
# sections): exact key sets.
KEYS_21 = {"id", "serverId", "volumeId", "device"}
KEYS_270 = KEYS_21 | {"tag"}
KEYS_279 = KEYS_270 | {"delete_on_termination"}
KEYS_289 = (KEYS_279 - {"id"}) | {"attachment_id", "bdm_uuid"}
BY_MV = [(None, KEYS_21), ("2.69", KEYS_21), ("2.70", KEYS_270), ("2.78", KEYS_270),
         ("2.79", KEYS_279), ("2.88", KEYS_279), ("2.89", KEYS_289)]


def check_item(item, keys, sid, vid, device, tag=None, dot=False):
    assert set(item) == keys, item
    assert item["serverId"] == sid and item["volumeId"] == vid, item
    assert item["device"] == device, item
    if "id" in keys:
        assert item["id"] == vid, item
    if "tag" in keys:
        assert item["tag"] == tag, item
    if "delete_on_termination" in keys:
        assert item["delete_on_termination"] is dot, item
    if "attachment_id" in keys:
        assert UUID4.match(item["attachment_id"]), item
        assert UUID4.match(item["bdm_uuid"]), item
        assert item["attachment_id"] != item["bdm_uuid"], item


@pytest.mark.parametrize("mv,keys", BY_MV, ids=[str(m) for m, _ in BY_MV])
@pytest.mark.parametrize("kind", NOVA_KINDS)
def test_list_and_show_fields_by_microversion(vol_env, kind, mv, keys):
    ctx = s_tagged(vol_env)
    sid, vid = ctx["sid"], ctx["vid"]
    r = vol_env.req(kind, "GET", attachments_path(ctx), mv=mv)
    assert r.status_code == 200, r.text
    items = r.json()["volumeAttachments"]
    assert len(items) == 1
    check_item(items[0], keys, sid, vid, "/dev/vdb", tag="data", dot=False)
    r = vol_env.req(kind, "GET", attachment_path(ctx), mv=mv)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volumeAttachment"]
    check_item(r.json()["volumeAttachment"], keys, sid, vid, "/dev/vdb", tag="data", dot=False)
    if mv == "2.89":   # the ids stay the same from one read to the next
        assert r.json()["volumeAttachment"]["attachment_id"] == items[0]["attachment_id"]
        assert r.json()["volumeAttachment"]["bdm_uuid"] == items[0]["bdm_uuid"]


@pytest.mark.parametrize("kind", ["hostway", "hostway-acct"])
def test_list_hostway_has_the_2_1_fields(vol_env, kind):
    """No microversions in the Hostway dialect, even when asked for
    (docs/api.md, decision D2)."""
    ctx = s_tagged(vol_env)
    for mv in (None, "2.89"):
        s = vol_env.s("a", mv)
        r = s.get(vol_env.url(kind, attachments_path(ctx)))
        assert r.status_code == 200, r.text
        assert list(r.json()) == ["volumeAttachments"]
        [item] = r.json()["volumeAttachments"]
        check_item(item, KEYS_21, ctx["sid"], ctx["vid"], "/dev/vdb")


@pytest.mark.parametrize("kind", KINDS)
def test_list_empty(vol_env, kind):
    sid = vol_env.server()
    r = vol_env.req(kind, "GET", f"/servers/{sid}/os-volume_attachments")
    assert r.status_code == 200 and r.json() == {"volumeAttachments": []}, r.text


# =====================================================================================
# Attach: POST /servers/{server_id}/os-volume_attachments
#
# Rows not covered, because they cannot occur in attachd:
#   3  policy 403: no policy file; every member may attach to its own servers.
#   4  shelved and version < 2.20: attachd has no shelve action
#      (docs/api.md, decision D9), so no server is ever shelved.
#   7  task_state not null: actions are synchronous
#      (docs/api.md, decisions D4 and D9), task_state is always null.
#   8  launched_at null: a new server is launched at once
#      (docs/api.md, decision D9).
#   9  device fails match_device: the schema's pattern is match_device's own,
#      so such a device is refused by row 1 first (case r1-device-pattern).
#   12 volume status not available: volumes are only available or in-use
#      (changes are synchronous: docs/api.md, decision D4); in-use means
#      attached, which is row 11.
#   13 availability zones: one zone, no cross_az_attach setting.
#   14 multiattach: no multiattach volumes.
# Row 16 (too many disks) is test_attach_too_many_disks.
# =====================================================================================

ATTACH_ROWS = [
    # 1: the body schema
    Row("r1-no-body-envelope", s_plain, e(400, "'volumeAttachment' is a required property"),
        body={}),
    Row("r1-envelope-extra-key", s_plain,
        e(400, "Additional properties are not allowed ('extra' was unexpected)"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}, "extra": 1}),
    Row("r1-missing-volumeId", s_plain,
        e(400, "Invalid input for field/attribute volumeAttachment. Value: {}. "
               "'volumeId' is a required property"),
        body={"volumeAttachment": {}}),
    Row("r1-extra-key", s_plain,
        e_extra("foo", lambda c: "{'volumeId': '%s', 'foo': 1}" % c["vid"]),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "foo": 1}}),
    Row("r1-device-pattern", s_plain,
        e_invalid("device", "/dev/1", f"'/dev/1' does not match '{DEVICE_PATTERN}'"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "device": "/dev/1"}}),
    Row("r1-device-not-string", s_plain,
        e_invalid("device", "5", "5 is not of type 'string', 'null'"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "device": 5}}),
    Row("r1-volumeId-not-string", s_plain,
        e_regex(400, r"Invalid input for field/attribute volumeId\. Value: 7\. .*"),
        body={"volumeAttachment": {"volumeId": 7}}),
    Row("r1-malformed-json", s_plain, e(400, "Malformed request body"),
        raw=b'{"volumeAttachment": '),
    # tag exists from 2.49, delete_on_termination from 2.79; the Hostway
    # dialect has the 2.1 fields only (docs/api.md, decision D2).
    Row("r1-tag-before-2.49", s_plain,
        e_extra("tag", lambda c: "{'volumeId': '%s', 'tag': 'x'}" % c["vid"]),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "tag": "x"}}, mv="2.48"),
    Row("r1-tag-too-long", s_plain,
        e_by_dialect(
            e_invalid("tag", "t" * 61, f"'{'t' * 61}' is too long"),
            e_extra("tag", lambda c: "{'volumeId': '%s', 'tag': '%s'}" % (c["vid"], "t" * 61))),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "tag": "t" * 61}}, mv="2.49"),
    Row("r1-tag-with-comma", s_plain,
        e_by_dialect(
            e_invalid("tag", "a,b", "'a,b' does not match '^[^,/]*$'"),
            e_extra("tag", lambda c: "{'volumeId': '%s', 'tag': 'a,b'}" % c["vid"])),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "tag": "a,b"}}, mv="2.49"),
    Row("r1-dot-before-2.79", s_plain,
        e_extra("delete_on_termination",
                lambda c: "{'volumeId': '%s', 'delete_on_termination': True}" % c["vid"]),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"],
                                             "delete_on_termination": True}}, mv="2.78"),
    Row("r1-dot-not-boolean", s_plain,
        e_by_dialect(
            e_regex(400, r"Invalid input for field/attribute delete_on_termination\. "
                         r"Value: maybe\. .*"),
            e_extra("delete_on_termination",
                    lambda c: "{'volumeId': '%s', 'delete_on_termination': 'maybe'}" % c["vid"])),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"],
                                             "delete_on_termination": "maybe"}}, mv="2.79"),
    # 2: server not found (another account's server is not found either:
    # docs/api.md, decision D6)
    Row("r2-unknown-server", s_unknown_server, e_instance_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("r2-other-accounts-server", s_foreign_server, e_instance_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    # 5: locked (an admin's lock stops the member; so does the member's own)
    Row("r5-locked-by-admin", s_locked_by_admin, e_locked(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("r5-locked-by-owner", s_locked_by_owner, e_locked(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    # 6: vm_state
    Row("r6-suspended", s_suspended, e_state("attach_volume", "suspended"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    # 10: volume not found
    Row("r10-unknown-volume", s_unknown_volume, e_volume_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("r10-other-accounts-volume", s_foreign_volume, e_volume_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    # 11: already attached, to this server or another (Hostway 409 conflict:
    # docs/api.md, decision D2)
    Row("r11-attached-here", s_attached, e_already_attached("sid"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("r11-attached-elsewhere", s_attached_elsewhere, e_already_attached("other"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    # 15: requested device in use
    Row("r15-device-in-use", s_device_in_use,
        e(409, "The supplied device path (/dev/vdb) is in use."),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "device": "/dev/vdb"}}),
    # Nova's order: when two rows apply, the earlier one answers.
    Row("order-1-before-2", s_unknown_server, e(400, "'volumeAttachment' is a required property"),
        body={}),
    Row("order-2-before-10", s_unknown_both, e_instance_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("order-5-before-6", s_locked_suspended, e_locked(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("order-6-before-10", s_suspended_unknown_volume, e_state("attach_volume", "suspended"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"]}}),
    Row("order-11-before-15", s_device_in_use_and_attached, e_already_attached("other"),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "device": "/dev/vdb"}}),
    Row("order-10-before-15", lambda env: {**s_device_in_use(env), "vid": uid("nope")},
        e_volume_404(),
        body=lambda c: {"volumeAttachment": {"volumeId": c["vid"], "device": "/dev/vdb"}}),
]


@pytest.mark.parametrize("row,kind", cases(ATTACH_ROWS))
def test_attach_refused(vol_env, row, kind):
    run_refused(vol_env, row, kind, "POST", attachments_path)


@pytest.mark.parametrize("kind", KINDS)
def test_attach_unauthorized(vol_env, kind):
    ctx = s_plain(vol_env)
    before = vol_env.snapshot(ctx["servers"], ctx["volumes"])
    user, _ = vol_env.victim()
    r = vol_env.d.session(user, "wrong").post(vol_env.url(kind, attachments_path(ctx)),
                                              json={"volumeAttachment": {"volumeId": ctx["vid"]}})
    assert_unauthorized(r)
    assert vol_env.snapshot(ctx["servers"], ctx["volumes"]) == before


ATTACH_RESPONSE = [(None, KEYS_21), ("2.49", KEYS_21), ("2.70", KEYS_270),
                   ("2.79", KEYS_279), ("2.89", KEYS_279)]


@pytest.mark.parametrize("mv,keys", ATTACH_RESPONSE, ids=[str(m) for m, _ in ATTACH_RESPONSE])
@pytest.mark.parametrize("kind", KINDS)
def test_attach_response(vol_env, kind, mv, keys):
    """Attach answers 200 + volumeAttachment; tag from 2.70,
    delete_on_termination from 2.79, never the 2.89 fields; the Hostway
    dialect answers with the 2.1 fields."""
    env = vol_env
    sid, vid = env.server(), env.volume()
    body = {"volumeId": vid}
    if dialect(kind) == "hostway":
        keys = KEYS_21
    else:
        if mv and float(mv[2:]) >= 49:
            body["tag"] = "disk-1"
        if mv and float(mv[2:]) >= 79:
            body["delete_on_termination"] = True
    r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments", mv=mv,
                json={"volumeAttachment": body})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert list(r.json()) == ["volumeAttachment"]
    item = r.json()["volumeAttachment"]
    check_item(item, keys, sid, vid, "/dev/vdb", tag=body.get("tag"),
               dot=body.get("delete_on_termination", False))
    env.assert_consistent([sid], [vid])
    # the stored attachment carries what was asked for
    r = env.s("a", "2.89").get(env.base + f"/v2.1/servers/{sid}/os-volume_attachments/{vid}")
    stored = r.json()["volumeAttachment"]
    assert stored["tag"] == body.get("tag")
    assert stored["delete_on_termination"] is body.get("delete_on_termination", False)


@pytest.mark.parametrize("kind", KINDS)
def test_attach_changes_volume_and_server_together(vol_env, kind):
    """Issue 3 item 3: the attachment, the volume's status and attachments and
    the server's volumes_attached change together."""
    env = vol_env
    sid, vid = env.server(), env.volume()
    assert env.volume_view(vid)["status"] == "available"
    r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": vid, "device": "/dev/test"}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["device"] == "/dev/test"
    v = env.volume_view(vid)
    assert v["status"] == "in-use"
    assert v["attachments"] == [{"id": vid, "server_id": sid, "volume_id": vid,
                                 "device": "/dev/test"}]
    nv = env.s("admin").get(env.base + f"/v2.1/os-volumes/{vid}").json()["volume"]
    assert nv["status"] == "in-use"
    assert nv["attachments"] == [{"id": vid, "volumeId": vid, "serverId": sid,
                                  "device": "/dev/test"}]
    srv = env.s("a").get(env.base + f"/v2.1/servers/{sid}").json()["server"]
    assert srv["os-extended-volumes:volumes_attached"] == [{"id": vid}]
    srv = env.s("a", "2.3").get(env.base + f"/v2.1/servers/{sid}").json()["server"]
    assert srv["os-extended-volumes:volumes_attached"] == [
        {"id": vid, "delete_on_termination": False}]
    env.assert_consistent([sid], [vid])


@pytest.mark.parametrize("kind", KINDS)
def test_attach_picks_the_next_free_device(vol_env, kind):
    env = vol_env
    sid = env.server()
    vids = [env.volume() for _ in range(4)]

    def attach(vid, **kw):
        r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments",
                    json={"volumeAttachment": {"volumeId": vid, **kw}})
        assert r.status_code == 200, r.text
        return r.json()["volumeAttachment"]["device"]

    assert attach(vids[0]) == "/dev/vdb"
    assert attach(vids[1], device=None) == "/dev/vdc"
    assert attach(vids[2], device="/dev/vde") == "/dev/vde"
    env.detach(sid, vids[0])
    assert attach(vids[0]) == "/dev/vdb"          # the first free one again
    assert attach(vids[3]) == "/dev/vdd"
    env.assert_consistent([sid], vids)


@pytest.mark.parametrize("state", ["stopped", "paused"])
@pytest.mark.parametrize("kind", KINDS)
def test_attach_and_detach_in_allowed_states(vol_env, kind, state):
    """Rows 6 and 8 of 3.2/3.5: active, paused and stopped servers take
    attachments and give them back."""
    env = vol_env
    sid, vid = env.server(), env.volume()
    env.action(sid, {"stopped": "os-stop", "paused": "pause"}[state])
    r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    r = env.req(kind, "DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert_empty(r, 202 if dialect(kind) == "nova" else 204)
    assert env.server_view(sid)["vm_state"] == state
    env.assert_consistent([sid], [vid])


@pytest.mark.parametrize("locker", ["admin", "a"])
@pytest.mark.parametrize("kind", KINDS)
def test_admin_attaches_and_detaches_on_a_locked_server(vol_env, kind, locker):
    """Row 5 of 3.2 and row 7 of 3.5 are for non-admins: an admin is not
    stopped by a lock, whoever set it."""
    env = vol_env
    sid, vid = env.server(), env.volume()
    env.action(sid, "lock", who=locker)
    acct = env.a     # the admin names the owner's account where the path has one
    r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments", who="admin",
                account=acct, json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    r = env.req(kind, "DELETE", f"/servers/{sid}/os-volume_attachments/{vid}", who="admin",
                account=acct)
    assert_empty(r, 202 if dialect(kind) == "nova" else 204)
    env.assert_consistent([sid], [vid])


@pytest.mark.parametrize("kind", ["hostway", "nova"])
def test_attach_too_many_disks(vol_env, kind):
    """Row 16 of 3.2: 403 once the server has the maximum number of disks."""
    env = vol_env
    sid = env.server()
    attached = 0
    last = None
    for _ in range(700):
        vid = env.volume()
        r = env.req(kind, "POST", f"/servers/{sid}/os-volume_attachments",
                    json={"volumeAttachment": {"volumeId": vid}})
        if r.status_code != 200:
            last = (r, vid)
            break
        attached += 1
    assert last is not None, "no limit on the number of disks"
    r, vid = last
    f = assert_fault(kind, r, 403, re.compile(
        r"The maximum allowed number of disk devices \((\d+)\) to attach to a single "
        r"instance has been exceeded\."))
    text = f["message"] if dialect(kind) == "nova" else f["details"]
    assert int(re.search(r"\((\d+)\)", text).group(1)) == attached
    assert env.volume_view(vid)["status"] == "available"
    assert len(env.server_view(sid)["attachments"]) == attached


# =====================================================================================
# Show: GET /servers/{server_id}/os-volume_attachments/{volume_id}
#
# Rows not covered: "policy 403" cannot occur (no policy file). At >= 2.89
# an attachment with a null attachment_id cannot exist (every attachment
# gets one when it is made).
# =====================================================================================

SHOW_ROWS = [
    Row("unknown-server", s_unknown_server, e_instance_404()),
    Row("other-accounts-server", s_foreign_server, e_instance_404()),
    Row("volume-not-attached", s_plain, e_not_attached()),
    Row("volume-attached-elsewhere", s_attached_elsewhere, e_not_attached()),
    Row("unknown-volume", s_unknown_volume, e_not_attached()),
    Row("unknown-volume-at-2.89", s_unknown_volume, e_not_attached(), mv="2.89",
        kinds=NOVA_KINDS),
]


@pytest.mark.parametrize("row,kind", cases(SHOW_ROWS))
def test_show_refused(vol_env, row, kind):
    run_refused(vol_env, row, kind, "GET", attachment_path)


@pytest.mark.parametrize("kind", KINDS)
def test_show_unauthorized(vol_env, kind):
    ctx = s_attached(vol_env)
    user, _ = vol_env.victim()
    assert_unauthorized(vol_env.d.session(user, "bad").get(vol_env.url(kind, attachment_path(ctx))))


HOSTWAY_VOLUME_KEYS = {"id", "display_name", "display_description", "size", "volume_type",
                       "metadata", "availability_zone", "attachments", "links", "snapshot_id",
                       "created_at"}


@pytest.mark.parametrize("kind", ["hostway", "hostway-acct"])
def test_show_hostway_returns_the_volume(vol_env, kind):
    """{"volume": {...}} in the snake_case volume form
    (docs/api.md, decision D2)."""
    env = vol_env
    sid = env.server()
    r = env.s("a").post(env.base + "/volumes", json={"volume": {
        "size": 3, "display_name": "data", "display_description": "the data disk"}})
    vid = r.json()["volume"]["id"]
    env.attach(sid, vid, device="/dev/vdc")
    r = env.req(kind, "GET", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volume"]
    v = r.json()["volume"]
    assert HOSTWAY_VOLUME_KEYS <= set(v), v
    assert v["id"] == vid and v["size"] == 3
    assert v["display_name"] == "data" and v["display_description"] == "the data disk"
    assert v["attachments"] == [{"id": vid, "server_id": sid, "volume_id": vid,
                                 "device": "/dev/vdc"}]
    assert v["links"] == [{"href": env.url(kind, f"/volumes/{vid}/"), "rel": "self"}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v["created_at"]), v
    assert isinstance(v["metadata"], dict)
    assert v.get("status", "in-use") == "in-use"


# =====================================================================================
# Update / swap: PUT /servers/{server_id}/os-volume_attachments/{volume_id}
#
# From 2.85 a PUT with the same volumeId updates delete_on_termination and
# refuses changes to device, tag, serverId and id; a different volumeId is a
# swap, for admins only (docs/api.md, decision D3), as is every PUT before
# 2.85. The Hostway dialect updates as 2.85 does.
# Not covered: Nova's "volume <id> is not migrating; this API should only be
# called by Cinder" (409): attachd lets an admin swap without Cinder. The
# swap policy's "service" role does not exist in attachd: admins stand in
# (docs/api.md, decision D3).
# =====================================================================================

def put_body(**kw):
    return lambda c: {"volumeAttachment": {k: (v(c) if callable(v) else v)
                                           for k, v in kw.items()}}


def same_vid(c):
    return c["vid"]


UPDATE_ROWS = [
    # the schema
    Row("schema-no-envelope", s_attached, e(400, "'volumeAttachment' is a required property"),
        body={}, mv="2.85"),
    Row("schema-missing-volumeId", s_attached,
        e(400, "Invalid input for field/attribute volumeAttachment. Value: {}. "
               "'volumeId' is a required property"),
        body={"volumeAttachment": {}}, mv="2.85"),
    Row("schema-dot-before-2.85", s_attached,
        e_extra("delete_on_termination",
                lambda c: "{'volumeId': '%s', 'delete_on_termination': True}" % c["vid"]),
        body=put_body(volumeId=same_vid, delete_on_termination=True), mv="2.84", who="admin",
        kinds=NOVA_KINDS),
    Row("schema-device-before-2.85", s_attached,
        e_extra("device", lambda c: "{'volumeId': '%s', 'device': '/dev/vdb'}" % c["vid"]),
        body=put_body(volumeId=same_vid, device="/dev/vdb"), mv="2.84", who="admin",
        kinds=NOVA_KINDS),
    Row("schema-dot-not-boolean", s_attached,
        e_regex(400, r"Invalid input for field/attribute delete_on_termination\. "
                     r"Value: maybe\. .*"),
        body=put_body(volumeId=same_vid, delete_on_termination="maybe"), mv="2.85"),
    # the server
    Row("unknown-server", s_unknown_server, e_instance_404(),
        body=put_body(volumeId=same_vid), mv="2.85"),
    Row("other-accounts-server", s_foreign_server, e_instance_404(),
        body=put_body(volumeId=same_vid), mv="2.85"),
    # the policy: a swap (or any PUT before 2.85) is for admins
    Row("member-put-before-2.85", s_attached, e(403, SWAP_POLICY),
        body=put_body(volumeId=same_vid), mv="2.84", kinds=NOVA_KINDS),
    Row("member-put-at-2.1", s_attached, e(403, SWAP_POLICY),
        body=put_body(volumeId=same_vid), kinds=NOVA_KINDS),
    Row("member-swap", s_two_attached, e(403, SWAP_POLICY),
        body=put_body(volumeId=lambda c: c["new"]), mv="2.85"),
    # 2.85 update: immutable properties, in Nova's order
    Row("id-not-mutable", s_tagged, e(400, "The id property is not mutable"),
        body=put_body(volumeId=same_vid, id="other", serverId="other", device="/dev/vdz"),
        mv="2.85"),
    Row("serverId-not-mutable", s_tagged, e(400, "The serverId property is not mutable"),
        body=put_body(volumeId=same_vid, serverId="other", device="/dev/vdz"), mv="2.85"),
    Row("device-not-mutable", s_tagged, e(400, "The device property is not mutable"),
        body=put_body(volumeId=same_vid, device="/dev/vdz", tag="other"), mv="2.85"),
    Row("tag-not-mutable", s_tagged, e(400, "The tag property is not mutable"),
        body=put_body(volumeId=same_vid, tag="other", delete_on_termination=True), mv="2.85"),
    Row("update-not-attached", s_plain,
        e(404, lambda c: f"No volume Block Device Mapping with id {c['vid']}."),
        body=put_body(volumeId=same_vid, delete_on_termination=True), mv="2.85"),
    Row("update-attached-elsewhere", s_attached_elsewhere,
        e(404, lambda c: f"No volume Block Device Mapping with id {c['vid']}."),
        body=put_body(volumeId=same_vid, delete_on_termination=True), mv="2.85"),
    # swaps by the admin
    Row("swap-unknown-old-volume", lambda env: {**s_two_available(env), "vid": uid("nope")},
        e_volume_404(), body=put_body(volumeId=lambda c: c["new"]), who="admin"),
    Row("swap-unknown-new-volume", s_attached,
        e(400, lambda c: f"Volume {c['nv']} could not be found."),
        body=lambda c: {"volumeAttachment": {"volumeId": c.setdefault("nv", uid("nope"))}},
        who="admin", mv="2.85"),
    Row("swap-old-not-attached", s_two_available,
        e(404, lambda c: f"No volume Block Device Mapping with id {c['vid']}."),
        body=put_body(volumeId=lambda c: c["new"]), who="admin", mv="2.85"),
    Row("swap-new-volume-in-use", s_two_attached_new_in_use,
        e_regex(400, r"Invalid volume: .*"),
        body=put_body(volumeId=lambda c: c["new"]), who="admin", mv="2.85"),
    Row("swap-new-volume-smaller", s_swap_smaller,
        e(400, "Invalid volume: New volume must be the same size or larger."),
        body=put_body(volumeId=lambda c: c["new"]), who="admin", mv="2.85"),
    Row("swap-server-stopped", s_two_attached_stopped,
        e_state("swap_volume", "stopped"),
        body=put_body(volumeId=lambda c: c["new"]), who="admin", mv="2.85"),
]


@pytest.mark.parametrize("row,kind", cases(UPDATE_ROWS))
def test_update_refused(vol_env, row, kind):
    # an admin's request names the owner's account where the path carries one
    # (docs/api.md, decision D1)
    run_refused(vol_env, row, kind, "PUT", attachment_path)


@pytest.mark.parametrize("kind", KINDS)
def test_update_delete_on_termination(vol_env, kind):
    """2.85 (and the Hostway dialect): delete_on_termination changes, nothing
    else; the same values for the immutable properties are accepted."""
    env = vol_env
    ctx = s_tagged(env)
    sid, vid = ctx["sid"], ctx["vid"]
    r = env.req(kind, "PUT", attachment_path(ctx), mv="2.85", json={"volumeAttachment": {
        "volumeId": vid, "delete_on_termination": True, "device": "/dev/vdb", "tag": "data",
        "serverId": sid, "id": vid}})
    assert_empty(r, 202)
    after = env.server_view(sid)
    [a] = after["attachments"]
    assert a["delete_on_termination"] is True and a["tag"] == "data" and a["device"] == "/dev/vdb"
    assert after["volumes_attached"] == [{"id": vid, "delete_on_termination": True}]
    r = env.req(kind, "PUT", attachment_path(ctx), mv="2.85",
                json={"volumeAttachment": {"volumeId": vid, "delete_on_termination": False}})
    assert_empty(r, 202)
    assert env.server_view(sid)["attachments"][0]["delete_on_termination"] is False
    # nothing to change is fine too
    r = env.req(kind, "PUT", attachment_path(ctx), mv="2.85",
                json={"volumeAttachment": {"volumeId": vid}})
    assert_empty(r, 202)
    assert env.server_view(sid)["attachments"][0]["attachment_id"] == a["attachment_id"]
    env.assert_consistent([sid], [vid])


@pytest.mark.parametrize("kind", NOVA_KINDS)
def test_update_delete_on_termination_accepts_boolean_strings(vol_env, kind):
    """update_v285 uses parameter_types.boolean, as the attach body does."""
    env = vol_env
    ctx = s_attached(env)
    r = env.req(kind, "PUT", attachment_path(ctx), mv="2.85",
                json={"volumeAttachment": {"volumeId": ctx["vid"],
                                           "delete_on_termination": "true"}})
    assert_empty(r, 202)
    assert env.server_view(ctx["sid"])["attachments"][0]["delete_on_termination"] is True


SWAP_MVS = [("nova", None), ("nova", "2.84"), ("nova", "2.85"), ("nova-proj", "2.89"),
            ("hostway", None), ("hostway-acct", None)]


@pytest.mark.parametrize("kind,mv", SWAP_MVS, ids=[f"{k}-{m}" for k, m in SWAP_MVS])
def test_admin_swap_moves_the_attachment(vol_env, kind, mv):
    """A swap: the attachment (and its device) moves to the new volume, the old
    one becomes available and the new one in-use, together
    (docs/api.md, decision D4)."""
    env = vol_env
    ctx = s_two_attached(env)
    sid, old, new = ctx["sid"], ctx["vid"], ctx["new"]
    before = env.server_view(sid)["attachments"][0]
    r = env.req(kind, "PUT", attachment_path(ctx), who="admin", mv=mv,
                json={"volumeAttachment": {"volumeId": new}})
    assert_empty(r, 202)
    sv = env.server_view(sid)
    [a] = sv["attachments"]
    assert a["volumeId"] == new and a["device"] == before["device"], a
    assert sv["volumes_attached"] == [{"id": new, "delete_on_termination": False}]
    assert env.volume_view(old)["status"] == "available"
    assert env.volume_view(old)["attachments"] == []
    assert env.volume_view(new)["status"] == "in-use"
    env.assert_consistent([sid], [old, new])
    # the old volume is free to attach again, and the new one is detachable
    env.attach(env.server(), old)
    env.detach(sid, new)
    env.assert_consistent([sid], [old, new])


@pytest.mark.parametrize("kind", NOVA_KINDS)
def test_admin_swap_to_the_same_volume_changes_nothing(vol_env, kind):
    env = vol_env
    ctx = s_attached(env)
    before = env.snapshot(ctx["servers"], ctx["volumes"])
    r = env.req(kind, "PUT", attachment_path(ctx), who="admin",
                json={"volumeAttachment": {"volumeId": ctx["vid"]}})
    assert_empty(r, 202)
    assert env.snapshot(ctx["servers"], ctx["volumes"]) == before


# =====================================================================================
# Detach: DELETE /servers/{server_id}/os-volume_attachments/{volume_id}
#
# Rows not covered, because they cannot occur in attachd:
#   2  policy 403: no policy file.
#   3  shelved and version < 2.20: no shelve action (docs/api.md, decision D9).
#   8  task_state / launched_at: always null / set (docs/api.md, decision D9);
#      vm_state is covered.
#   9  compute host down: there is no compute host.
#   10 volume not in-use while attached: detach is synchronous
#      (docs/api.md, decision D4); an
#      attached volume is always in-use (checked by assert_consistent).
# =====================================================================================

DETACH_ROWS = [
    Row("r1-unknown-server", s_unknown_server, e_instance_404()),
    Row("r1-other-accounts-server", s_foreign_server, e_instance_404()),
    Row("r4-unknown-volume", s_unknown_volume, e_volume_404()),
    Row("r4-other-accounts-volume", s_foreign_volume, e_volume_404()),
    Row("r5-not-attached", s_plain, e_not_attached()),
    Row("r5-attached-elsewhere", s_attached_elsewhere, e_not_attached()),
    Row("r6-root-volume", s_root, e(400, "Cannot detach a root device volume")),
    Row("r7-locked-by-admin", s_attached_locked, e_locked()),
    Row("r7-locked-by-owner", s_attached_locked_by_owner, e_locked()),
    Row("r8-suspended", s_attached_suspended, e_state("detach_volume", "suspended")),
    # Nova's order
    Row("order-1-before-4", s_unknown_both, e_instance_404()),
    Row("order-4-before-5", s_unknown_volume, e_volume_404()),
    Row("order-6-before-7", s_root_locked, e(400, "Cannot detach a root device volume")),
    Row("order-7-before-8", s_attached_locked_suspended, e_locked()),
]


@pytest.mark.parametrize("row,kind", cases(DETACH_ROWS))
def test_detach_refused(vol_env, row, kind):
    run_refused(vol_env, row, kind, "DELETE", attachment_path)


@pytest.mark.parametrize("kind", KINDS)
def test_detach_unauthorized(vol_env, kind):
    ctx = s_attached(vol_env)
    before = vol_env.snapshot(ctx["servers"], ctx["volumes"])
    user, _ = vol_env.victim()
    r = vol_env.d.session(user, "bad").delete(vol_env.url(kind, attachment_path(ctx)))
    assert_unauthorized(r)
    assert_unauthorized(vol_env.d.session().delete(vol_env.url(kind, attachment_path(ctx))))
    assert vol_env.snapshot(ctx["servers"], ctx["volumes"]) == before


@pytest.mark.parametrize("kind", KINDS)
def test_detach(vol_env, kind):
    """Nova 202, Hostway 204, no body either way; the volume is available at
    once (docs/api.md, decision D4) and the server no longer lists it; a
    second detach is 404."""
    env = vol_env
    sid = env.server()
    keep, gone = env.volume(), env.volume()
    env.attach(sid, keep)
    env.attach(sid, gone)
    r = env.req(kind, "DELETE", f"/servers/{sid}/os-volume_attachments/{gone}")
    assert_empty(r, 202 if dialect(kind) == "nova" else 204)
    assert "Content-Type" not in r.headers or dialect(kind) == "nova"
    assert env.volume_view(gone)["status"] == "available"
    assert env.volume_view(gone)["attachments"] == []
    sv = env.server_view(sid)
    assert [a["volumeId"] for a in sv["attachments"]] == [keep]
    assert sv["volumes_attached"] == [{"id": keep, "delete_on_termination": False}]
    env.assert_consistent([sid], [keep, gone])
    r = env.req(kind, "DELETE", f"/servers/{sid}/os-volume_attachments/{gone}")
    assert_fault(kind, r, 404, f"Instance {sid} is not attached to volume {gone}")
    # the detached volume can be attached again, anywhere
    other = env.server()
    env.attach(other, gone)
    env.assert_consistent([sid, other], [keep, gone])


def test_root_volume_is_listed_and_in_use(vol_env):
    """A server booted from a volume has it attached at boot index 0."""
    env = vol_env
    ctx = s_root(env)
    sv = env.server_view(ctx["sid"])
    assert [a["volumeId"] for a in sv["attachments"]] == [ctx["vid"]]
    assert env.volume_view(ctx["vid"])["status"] == "in-use"
    env.assert_consistent(ctx["servers"], ctx["volumes"])


# =====================================================================================
# Server delete (docs/api.md, decision D9; issue 3 item 3): detaches the server's volumes and
# deletes those marked delete_on_termination, in one transaction.
# =====================================================================================

@pytest.mark.parametrize("kind", KINDS)
def test_server_delete_detaches_and_deletes_on_termination(vol_env, kind):
    env = vol_env
    vroot, vkeep, vdrop = env.volume(), env.volume(), env.volume()
    sid = env.boot_from_volume(vroot, delete_on_termination=True)
    env.attach(sid, vkeep, mv="2.79", delete_on_termination=False)
    env.attach(sid, vdrop, mv="2.79", delete_on_termination=True)
    env.assert_consistent([sid], [vroot, vkeep, vdrop])
    r = env.req(kind, "DELETE", f"/servers/{sid}")
    assert_empty(r, 204)
    assert env.server_view(sid) is None
    assert env.volume_view(vroot) is None
    assert env.volume_view(vdrop) is None
    v = env.volume_view(vkeep)
    assert v["status"] == "available" and v["attachments"] == []
    # the kept volume can be attached again
    env.attach(env.server(), vkeep)


def test_server_delete_keeps_a_root_volume_without_delete_on_termination(vol_env):
    env = vol_env
    vroot = env.volume()
    sid = env.boot_from_volume(vroot)
    r = env.s("a").delete(env.base + f"/servers/{sid}")
    assert_empty(r, 204)
    v = env.volume_view(vroot)
    assert v["status"] == "available" and v["attachments"] == []


# =====================================================================================
# Accounts on the attachment paths (docs/api.md, decision D1): {accountId} /
# {project_id} must be the caller's own account (an admin may name any, and
# then sees only that account).
# =====================================================================================

ATTACHMENT_CALLS = [
    ("GET", "/servers/{sid}/os-volume_attachments", None),
    ("POST", "/servers/{sid}/os-volume_attachments", "attach"),
    ("GET", "/servers/{sid}/os-volume_attachments/{vid}", None),
    ("PUT", "/servers/{sid}/os-volume_attachments/{vid}", "update"),
    ("DELETE", "/servers/{sid}/os-volume_attachments/{vid}", None),
]


@pytest.mark.parametrize("method,path,body", ATTACHMENT_CALLS,
                         ids=[f"{m}-{p.count('/')}" for m, p, _ in ATTACHMENT_CALLS])
@pytest.mark.parametrize("kind", ["hostway-acct", "nova-proj"])
def test_other_accounts_prefix_is_not_found(vol_env, kind, method, path, body):
    env = vol_env
    ctx = s_attached(env)
    new = env.volume()
    ctx["volumes"].append(new)
    before = env.snapshot(ctx["servers"], ctx["volumes"])
    payload = {"attach": {"volumeAttachment": {"volumeId": new}},
               "update": {"volumeAttachment": {"volumeId": ctx["vid"],
                                               "delete_on_termination": True}}}.get(body)
    url_path = path.format(sid=ctx["sid"], vid=ctx["vid"])
    # a member naming another account: as if the path did not exist
    r = env.s("a", "2.85").request(method, env.url(kind, url_path, account=env.b), json=payload)
    assert_fault(kind, r, 404, "The resource could not be found.")
    # an admin naming an account that does not own the server: not found there
    r = env.s("admin", "2.85").request(method, env.url(kind, url_path, account=env.b),
                                       json=payload)
    assert_fault(kind, r, 404, f"Instance {ctx['sid']} could not be found.")
    assert env.snapshot(ctx["servers"], ctx["volumes"]) == before
