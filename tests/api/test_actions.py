"""Server actions (docs/api.md, decision D9; issue 2 item 8): os-stop, os-start, lock, unlock,
pause, unpause, suspend, resume with Nova's state rules
(nova/compute/api.py check_instance_state / check_instance_lock) in both
dialects."""
import pytest

from apiutil import (action, assert_error, assert_not_found, assert_nova_error,
                     assert_request_ids, get_server, prefix, unique)

# vm_state -> (status, power_state or None when not pinned down)
STATES = {
    "active": ("ACTIVE", 1),
    "stopped": ("SHUTOFF", 4),
    "paused": ("PAUSED", 3),
    "suspended": ("SUSPENDED", None),
}
# how to reach each state from active
REACH = {"active": [], "stopped": ["os-stop"], "paused": ["pause"], "suspended": ["suspend"]}

# action -> (Nova's action word in the 409 message, states it is allowed in, resulting state)
RULES = {
    "os-stop": ("stop", {"active"}, "stopped"),
    "os-start": ("start", {"stopped"}, "active"),
    "pause": ("pause", {"active"}, "paused"),
    "unpause": ("unpause", {"paused"}, "active"),
    "suspend": ("suspend", {"active"}, "suspended"),
    "resume": ("resume", {"suspended"}, "active"),
    "lock": ("lock", set(STATES), None),
    "unlock": ("unlock", set(STATES), None),
}

DIALECTS = {"nova": "/v2.1", "hostway": ""}


def ok_status(dialect, r):
    if dialect == "nova":
        return r.status_code == 202
    return r.status_code in (200, 202, 204)


def assert_state(s, base, pfx, sid, vm_state):
    srv = get_server(s, base, pfx, sid)
    status, power = STATES[vm_state]
    assert srv["OS-EXT-STS:vm_state"] == vm_state, srv
    assert srv["status"] == status, srv
    assert srv["OS-EXT-STS:task_state"] is None, srv
    if power is not None:
        assert srv["OS-EXT-STS:power_state"] == power, srv


def bring_to(w, s, pfx, sid, state):
    for act in REACH[state]:
        r = action(s, w.base, pfx, sid, act)
        assert r.status_code in (200, 202, 204), (act, r.status_code, r.text)
    assert_state(s, w.base, pfx, sid, state)


CASES = [(st, act) for st in STATES for act in RULES]


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
@pytest.mark.parametrize("start,act", CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_action_state_rules(world, dialect, start, act):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name=unique("act"))
    bring_to(world, world.sa, pfx, sid, start)
    word, allowed, result = RULES[act]
    r = action(world.sa, world.base, pfx, sid, act)
    assert_request_ids(r)
    if start in allowed:
        assert ok_status(dialect, r), (r.status_code, r.text)
        if dialect == "nova":
            assert r.content == b"", r.content
        assert_state(world.sa, world.base, pfx, sid, result or start)
    else:
        f = assert_error(dialect, r, 409, nova_message=(
            f"Cannot '{word}' instance {sid} while it is in vm_state {start}"))
        if dialect == "hostway":   # details carry the specific reason (docs/api.md, decision D2)
            assert start in f["details"] and word in f["details"], f
        assert_state(world.sa, world.base, pfx, sid, start)


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_full_cycle(world, dialect):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="cycle")
    for act, state in [("os-stop", "stopped"), ("os-start", "active"), ("pause", "paused"),
                       ("unpause", "active"), ("suspend", "suspended"), ("resume", "active")]:
        r = action(world.sa, world.base, pfx, sid, act)
        assert ok_status(dialect, r), (act, r.status_code, r.text)
        assert_state(world.sa, world.base, pfx, sid, state)


LOCK_BLOCKED = ["os-stop", "pause", "suspend"]


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
@pytest.mark.parametrize("act", LOCK_BLOCKED)
def test_locked_server_refuses_member_actions(world, dialect, act):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="locked")
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "lock"))
    r = action(world.sa, world.base, pfx, sid, act)
    f = assert_error(dialect, r, 409, nova_message=f"Instance {sid} is locked")
    if dialect == "hostway":
        assert "locked" in f["details"], f
    assert_state(world.sa, world.base, pfx, sid, "active")
    # unlock by the member who locked it, then the action works
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "unlock"))
    r = action(world.sa, world.base, pfx, sid, act)
    assert ok_status(dialect, r), r.text
    assert_state(world.sa, world.base, pfx, sid, RULES[act][2])


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_locked_server_refuses_start_and_resume_and_unpause(world, dialect):
    pfx = DIALECTS[dialect]
    for state, act in [("stopped", "os-start"), ("paused", "unpause"), ("suspended", "resume")]:
        sid = world.d.add_server(world.a, name="locked2")
        bring_to(world, world.sa, pfx, sid, state)
        assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "lock"))
        r = action(world.sa, world.base, pfx, sid, act)
        assert_error(dialect, r, 409, nova_message=f"Instance {sid} is locked")
        assert_state(world.sa, world.base, pfx, sid, state)


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_locked_server_refuses_member_delete(world, dialect):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="locked-del")
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "lock"))
    r = world.sa.delete(f"{world.base}{pfx}/servers/{sid}")
    assert_error(dialect, r, 409, nova_message=f"Instance {sid} is locked")
    assert get_server(world.sa, world.base, pfx, sid)["id"] == sid
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "unlock"))
    assert world.sa.delete(f"{world.base}{pfx}/servers/{sid}").status_code == 204


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_admin_may_act_on_locked_server(world, dialect):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="locked-admin")
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "lock"))
    r = action(world.admin, world.base, pfx, sid, "os-stop")
    assert ok_status(dialect, r), (r.status_code, r.text)
    assert_state(world.sa, world.base, pfx, sid, "stopped")
    # still locked for the member
    r = action(world.sa, world.base, pfx, sid, "os-start")
    assert_error(dialect, r, 409, nova_message=f"Instance {sid} is locked")
    # the admin can unlock it; then the member can act again
    assert ok_status(dialect, action(world.admin, world.base, pfx, sid, "unlock"))
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "os-start"))
    assert_state(world.sa, world.base, pfx, sid, "active")


def test_admin_may_delete_locked_server(world):
    sid = world.d.add_server(world.a, name="locked-admin-del")
    assert action(world.sa, world.base, "/v2.1", sid, "lock").status_code == 202
    assert world.admin.delete(f"{world.base}/v2.1/servers/{sid}").status_code == 204
    assert_not_found("nova", world.sa.get(f"{world.base}/v2.1/servers/{sid}"), sid)


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_lock_and_unlock_are_idempotent(world, dialect):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="lock2")
    for act in ("lock", "lock", "unlock", "unlock"):
        r = action(world.sa, world.base, pfx, sid, act)
        assert ok_status(dialect, r), (act, r.status_code, r.text)
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "os-stop"))


def test_lock_is_visible_at_2_9(world):
    sid = world.d.add_server(world.a, name="lockview")
    h = {"OpenStack-API-Version": "compute 2.9"}
    assert world.sa.get(f"{world.base}/v2.1/servers/{sid}", headers=h).json()["server"]["locked"] is False
    assert action(world.sa, world.base, "/v2.1", sid, "lock").status_code == 202
    assert world.sa.get(f"{world.base}/v2.1/servers/{sid}", headers=h).json()["server"]["locked"] is True


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_action_on_unknown_server_is_404(world, dialect):
    pfx = DIALECTS[dialect]
    sid = unique("nosrv")
    assert_not_found(dialect, action(world.sa, world.base, pfx, sid, "os-stop"), sid)


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_unknown_action_is_400(world, dialect):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="unk")
    r = action(world.sa, world.base, pfx, sid, "os-bogus")
    f = assert_error(dialect, r, 400, text_contains="os-bogus")
    if dialect == "nova":
        assert f["message"].startswith("There is no such action: os-bogus"), f
    assert_state(world.sa, world.base, pfx, sid, "active")


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"os-stop"', b"{}",
                                  b'{"os-stop": null, "pause": null}'])
def test_malformed_action_body_is_400(world, dialect, body):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name="malformed")
    r = world.sa.post(f"{world.base}{pfx}/servers/{sid}/action", data=body,
                      headers={"Content-Type": "application/json"})
    assert_error(dialect, r, 400)
    assert_state(world.sa, world.base, pfx, sid, "active")


def test_nova_malformed_action_message(world):
    sid = world.d.add_server(world.a, name="malformed2")
    r = world.sa.post(f"{world.base}/v2.1/servers/{sid}/action", data=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert_nova_error(r, 400, "badRequest", "Malformed request body")


def test_state_survives_restart(daemon):
    acct = daemon.add_account()
    user, pw = daemon.add_user(acct)
    s = daemon.session(user, pw)
    ids = {st: daemon.add_server(acct, name=st) for st in STATES}
    w = type("W", (), {"base": daemon.base})
    for st, sid in ids.items():
        bring_to(w, s, "/v2.1", sid, st)
    daemon.restart()
    for st, sid in ids.items():
        assert_state(s, daemon.base, "/v2.1", sid, st)


@pytest.mark.parametrize("kind", ["hostway-acct", "nova-proj"])
def test_actions_under_account_prefix(world, kind):
    pfx = prefix(kind, world.a)
    dialect = "nova" if kind.startswith("nova") else "hostway"
    sid = world.d.add_server(world.a, name="acctpfx")
    assert ok_status(dialect, action(world.sa, world.base, pfx, sid, "os-stop"))
    assert_state(world.sa, world.base, pfx, sid, "stopped")


# -- os-getConsoleOutput ------------------------------------------------------

@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_console_output_without_a_hypervisor_is_empty(world, dialect):
    """Nova's os-getConsoleOutput: 200 {"output": ...}. Without a
    hypervisor (the none driver) nothing was ever printed: "". The length is
    Nova's: an integer, its digits as a string, or null; -1 or null for
    all."""
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name=unique("con"))
    # "-5" passes Nova's schema (its minimum is for numbers): all, as -1
    for arg in ({}, {"length": 5}, {"length": "12"}, {"length": -1}, {"length": None},
                {"length": "-5"}):
        r = action(world.sa, world.base, pfx, sid, "os-getConsoleOutput", arg)
        assert r.status_code == 200, (arg, r.text)
        assert r.json() == {"output": ""}, r.text


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
@pytest.mark.parametrize("arg,why", [
    (None, "is not of type 'object'"),
    ({"length": -2}, "Invalid input for field/attribute length. Value: -2. -2 is less than the "
                     "minimum of -1"),
    ({"length": "x1"}, "Invalid input for field/attribute length. Value: x1. 'x1' does not "
                       "match '^-?[0-9]+$'"),
    ({"length": 1.5}, "1.5 is not of type 'integer', 'string', 'null'"),
    ({"length": "-"}, "'-' does not match '^-?[0-9]+$'"),
    ({"length": ""}, "'' does not match '^-?[0-9]+$'"),
    ({"length": [3]}, "[3] is not of type 'integer', 'string', 'null'"),
    ({"lines": 3}, "Additional properties are not allowed ('lines' was unexpected)"),
])
def test_console_output_bad_length_is_400(world, dialect, arg, why):
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name=unique("con"))
    r = action(world.sa, world.base, pfx, sid, "os-getConsoleOutput", arg)
    assert_error(dialect, r, 400, text_contains=why)


@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_console_output_of_an_unknown_server_is_404(world, dialect):
    pfx = DIALECTS[dialect]
    r = action(world.sa, world.base, pfx, "no-such-server", "os-getConsoleOutput", {})
    assert_not_found(dialect, r, "no-such-server")


# -- reboot -------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["nova", "hostway"])
@pytest.mark.parametrize("start", list(STATES))
@pytest.mark.parametrize("kind", ["SOFT", "hard", "Hard"])
def test_reboot_state_rules(world, dialect, start, kind):
    """Nova's reboot: SOFT from active only; HARD from active, stopped,
    paused, suspended (and error); the server is active afterwards. Without
    a hypervisor it is done at once."""
    pfx = DIALECTS[dialect]
    sid = world.d.add_server(world.a, name=unique("reboot"))
    bring_to(world, world.sa, pfx, sid, start)
    r = action(world.sa, world.base, pfx, sid, "reboot", {"type": kind})
    if kind == "SOFT" and start != "active":
        assert_error(dialect, r, 409, nova_message=(
            f"Cannot 'reboot' instance {sid} while it is in vm_state {start}"))
        assert_state(world.sa, world.base, pfx, sid, start)
    else:
        assert ok_status(dialect, r), (r.status_code, r.text)
        assert_state(world.sa, world.base, pfx, sid, "active")


@pytest.mark.parametrize("arg,why", [
    (None, "is not of type 'object'"),
    ({}, "'type' is a required property"),
    ({"type": "warm"}, "Invalid input for field/attribute type. Value: warm. 'warm' is not one "
                       "of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"),
    ({"type": 1}, "Invalid input for field/attribute type. Value: 1. 1 is not of type 'string'"),
    ({"type": "SOFT", "force": True}, "Additional properties are not allowed ('force' was"),
])
def test_reboot_bad_body_is_400(world, arg, why):
    sid = world.d.add_server(world.a, name=unique("reboot"))
    r = action(world.sa, world.base, "/v2.1", sid, "reboot", arg)
    assert_error("nova", r, 400, text_contains=why)


def test_locked_server_refuses_member_reboot(world):
    sid = world.d.add_server(world.a, name=unique("reboot"))
    assert action(world.admin, world.base, "/v2.1", sid, "lock").status_code == 202
    r = action(world.sa, world.base, "/v2.1", sid, "reboot", {"type": "HARD"})
    assert_error("nova", r, 409, nova_message=f"Instance {sid} is locked")
