"""Authentication (issue 2 item 5; docs/api.md, decision D6): HTTP Basic on
every request except version discovery, the 401 of Hostway's
DetachVolumeFromServer page (docs/api.md) byte for byte in both dialects, 401 before
any lookup, throttling of failed attempts, and CLI password changes taking
effect at once on the running daemon."""
import base64
import time

import pytest

from apiutil import (UNAUTHORIZED_BODY, assert_error, assert_request_ids,
                     assert_unauthorized, basic, unique)

SEED_PATH = "/servers/test-server-0013/os-volume_attachments/hbs2012May03_0OxRg0Jz7"


def b64(raw):
    return "Basic " + base64.b64encode(raw).decode()


# Every malformed or wrong credential, by what is wrong with it.
BAD_AUTH = {
    "missing": None,
    "empty": "",
    "scheme-only": "Basic",
    "scheme-space": "Basic ",
    "other-scheme": "Bearer abcdef",
    "bad-base64": "Basic !!!not*base64!!!",
    "truncated-base64": "Basic dXNlcjpwYXNz=x",
    "no-colon": b64(b"userwithoutcolon"),
    "empty-user": b64(b":secret"),
    "non-utf8-user": b64(b"\xff\xfeuser:secret"),
    "non-utf8-password": b64(b"someone:\xff\xfe"),
    "unknown-user": b64(b"nobody-here:secret"),
}


def headers_for(value):
    return {} if value is None else {"Authorization": value}


def _paths(w):
    return [
        ("DELETE", SEED_PATH),
        ("GET", "/servers"),
        ("GET", f"/accounts/{w.a}/flexcloud/servers"),
        ("GET", "/v2.1/servers"),
        ("GET", f"/v2.1/{w.a}/servers"),
        ("POST", "/v2.1/servers"),
    ]


@pytest.mark.parametrize("case", sorted(BAD_AUTH))
def test_bad_credentials_get_seed_401_on_every_prefix(world, case):
    for method, path in _paths(world):
        r = world.anon.request(method, world.base + path, headers=headers_for(BAD_AUTH[case]),
                               json={} if method == "POST" else None)
        assert_unauthorized(r)


@pytest.mark.parametrize("path", ["/servers", "/v2.1/servers", SEED_PATH])
def test_wrong_password_of_real_user_is_401(world, path):
    r = world.anon.get(world.base + path, headers={"Authorization": basic(world.b_user, "nope")})
    assert_unauthorized(r)
    # and the right password works on the same path family
    ok = world.sb.get(world.base + ("/v2.1/servers" if path.startswith("/v2.1") else "/servers"))
    assert ok.status_code == 200, ok.text


def test_401_body_is_exactly_the_seed_text(world):
    r = world.anon.get(world.base + "/servers")
    assert r.status_code == 401
    assert r.content == UNAUTHORIZED_BODY
    lines = r.content.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 6
    assert b"requested.  Either" in r.content
    assert not r.content.startswith(b" ")
    assert r.headers.get("Content-Length") in (None, str(len(UNAUTHORIZED_BODY)))


@pytest.mark.parametrize("path", [
    "/servers/no-such-server",
    "/servers/no-such-server/action",
    "/accounts/no-such-account/flexcloud/servers/no-such-server",
    "/v2.1/servers/no-such-server",
    "/v2.1/no-such-project/servers/no-such-server",
    "/servers/fake_server_id/os-volume_attachments/hbs2012May03_0OxRg0Jz7",
    "/v2.1/servers/fake_server_id/os-volume_attachments/fake_volume_id",
])
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_401_comes_before_any_lookup(world, path, method):
    """A bad password on an unknown resource is 401, not 404
    (docs/api.md, decision D6)."""
    user, _ = world.d.add_user(world.a)   # a real user, fresh so no throttling
    r = world.anon.request(method, world.base + path,
                           headers={"Authorization": basic(user, "wrong-password")},
                           json={"os-stop": None} if method == "POST" else None)
    assert_unauthorized(r)


@pytest.mark.parametrize("path", ["/no/such/route", "/v2.1/no-such-collection"])
def test_unknown_route_without_credentials_is_401(world, path):
    assert_unauthorized(world.anon.get(world.base + path))


@pytest.mark.parametrize("path", ["/", "/v2.1", "/v2.1/"])
@pytest.mark.parametrize("auth", [None, "garbage", "Basic " + base64.b64encode(b"x:y").decode()])
def test_version_discovery_needs_no_credentials(world, path, auth):
    r = world.anon.get(world.base + path, headers=headers_for(auth))
    assert r.status_code == 200, (r.status_code, r.text)
    assert_request_ids(r)


@pytest.mark.parametrize("password", ["a:b:c", "p\u00e4ssw\u00f6rd-\u2603", "with space", "x" * 200])
def test_awkward_passwords_work(world, password):
    """The password is everything after the first colon, UTF-8 (RFC 7617)."""
    user, pw = world.d.add_user(world.a, password=password)
    s = world.d.session(user, pw)
    r = s.get(world.base + "/v2.1/servers")
    assert r.status_code == 200, r.text
    r = s.get(world.base + "/servers")
    assert r.status_code == 200, r.text
    # a prefix of it is not good enough
    r = world.anon.get(world.base + "/v2.1/servers",
                       headers={"Authorization": basic(user, pw[:-1])})
    assert_unauthorized(r)


@pytest.mark.parametrize("dialect_path", ["/v2.1/servers", "/servers"])
def test_changed_password_stops_working_at_once(daemon, dialect_path):
    acct = daemon.add_account()
    user, old = daemon.add_user(acct)
    s_old = daemon.session(user, old)
    for _ in range(3):   # verified and cached
        r = s_old.get(daemon.url(dialect_path))
        assert r.status_code == 200, r.text
    new = "new-" + unique("pw")
    daemon.cli("user", "passwd", user, stdin=new + "\n")
    assert_unauthorized(s_old.get(daemon.url(dialect_path)))
    s_new = daemon.session(user, new)
    assert s_new.get(daemon.url(dialect_path)).status_code == 200
    assert_unauthorized(s_old.get(daemon.url(dialect_path)))


@pytest.mark.parametrize("dialect_path", ["/v2.1/servers", "/servers"])
def test_deleted_user_stops_working_at_once(daemon, dialect_path):
    acct = daemon.add_account()
    user, pw = daemon.add_user(acct)
    other, other_pw = daemon.add_user(acct)
    s = daemon.session(user, pw)
    for _ in range(3):
        assert s.get(daemon.url(dialect_path)).status_code == 200
    daemon.cli("user", "del", user)
    assert_unauthorized(s.get(daemon.url(dialect_path)))
    # other users of the same account are unaffected
    assert daemon.session(other, other_pw).get(daemon.url(dialect_path)).status_code == 200


def test_readded_user_with_new_password_does_not_accept_old_one(daemon):
    acct = daemon.add_account()
    user, pw = daemon.add_user(acct)
    s = daemon.session(user, pw)
    assert s.get(daemon.url("/v2.1/servers")).status_code == 200
    daemon.cli("user", "del", user)
    daemon.add_user(acct, username=user, password="second-" + pw)
    assert_unauthorized(s.get(daemon.url("/v2.1/servers")))
    assert daemon.session(user, "second-" + pw).get(daemon.url("/v2.1/servers")).status_code == 200


def _throttled(daemon, user, attempts=14, path="/v2.1/servers"):
    statuses = []
    last = None
    for _ in range(attempts):
        last = daemon.session(user, "wrong-" + unique()).get(daemon.url(path))
        statuses.append(last.status_code)
        if last.status_code == 429:
            break
    return statuses, last


@pytest.mark.parametrize("existing", [True, False], ids=["existing-user", "unknown-user"])
def test_failed_attempts_are_throttled_per_username(daemon, existing):
    acct = daemon.add_account()
    victim = unique("victim")
    if existing:
        daemon.add_user(acct, username=victim, password="right-password")
    bystander, bystander_pw = daemon.add_user(acct)

    statuses, last = _throttled(daemon, victim)
    assert statuses[:10] == [401] * 10, statuses
    assert 429 in statuses and len(statuses) <= 12, \
        f"more than 10 failures within 60 s must give 429: {statuses}"

    # Nova dialect: overLimit with Retry-After
    retry = last.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 0 < int(retry) <= 60, last.headers
    assert_error("nova", last, 429)

    # still throttled, and in the Hostway dialect too
    r = daemon.session(victim, "wrong-again").get(daemon.url("/servers"))
    assert r.status_code == 429
    assert_error("hostway", r, 429)
    assert r.headers.get("Retry-After", "").isdigit()

    # another user is not slowed down: right password works, wrong one is a plain 401
    t0 = time.monotonic()
    ok = daemon.session(bystander, bystander_pw).get(daemon.url("/v2.1/servers"))
    assert ok.status_code == 200, ok.text
    assert time.monotonic() - t0 < 5
    assert_unauthorized(daemon.session(bystander, "wrong").get(daemon.url("/v2.1/servers")))


def test_failures_below_the_threshold_do_not_lock_out(daemon):
    acct = daemon.add_account()
    user, pw = daemon.add_user(acct)
    for _ in range(9):
        assert_unauthorized(daemon.session(user, "wrong").get(daemon.url("/servers")))
    r = daemon.session(user, pw).get(daemon.url("/servers"))
    assert r.status_code == 200, r.text
