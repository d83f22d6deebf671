"""A query read as each dialect's service reads it (src/api/query.c).

Nova, Cinder and Glance read a query with webob: '&' and ';' both separate
arguments, an empty one is skipped, one without '=' has the value "", and
its own percent-decoding (webob/compat.py's unquote) takes a '%' with the up
to two characters after it that Python's int(x, 16) reads, so "%a" is a
newline and "%%41" is "%A". Nova's GETs answer a query that does not decode
as UTF-8 with a 400 before anything else of the method runs. The Hostway
dialect keeps libmicrohttpd's parse (src/http/query.h).

The random test checks attachd's decoding against webob's own
parse_qsl_text (python3-webob, a test dependency: Makefile's TEST_DEBS).
"""
import json
import random

import pytest

from apiutil import Conn, assert_unauthorized, RawAsRequests

UTF8_400 = "Query string is not UTF-8 encoded"


def get(world, path, auth=True, microversion=None):
    headers = []
    if auth:
        headers.append(("Authorization", world.sa.headers["Authorization"]))
    if microversion:
        headers.append(("OpenStack-API-Version", f"compute {microversion}"))
    with Conn(world.d.port) as c:
        return c.request("GET", path, headers)


def message(r):
    """Nova's text of an error, in any dialect's shape."""
    body = json.loads(r.body)
    if "title" in body:     # Glance's
        return body["message"].split("<br />")[0]
    (fault,) = body.values()
    return fault.get("details", fault["message"])   # Hostway's, or Nova's


def assert_refused(r, status, text):
    assert (r.status, message(r)) == (status, text), (r.status, r.body[:300])


def not_digits(name, value):
    """Nova's query schema's 400 for a value of limit that is not digits."""
    return (f"Invalid input for query parameters {name}. Value: {value}. "
            f"{value!r} does not match '^[0-9]*$'")


# -- ';' separates, empty arguments are skipped -------------------------------------------

@pytest.mark.parametrize("query", ["limit=1;limit=x", "limit=1&;&limit=x", ";;limit=x;"])
def test_nova_splits_the_query_at_semicolons(world, query):
    """Each value of limit is checked (Nova's query schema): x is one of them
    only if ';' separates it from the rest."""
    assert_refused(get(world, f"/v2.1/flavors?{query}"), 400, not_digits("limit", "x"))


def test_nova_reads_paging_across_semicolons(world):
    r = get(world, "/v2.1/flavors?limit=1;marker=x")
    assert r.status == 400, (r.status, r.body[:300])
    assert message(r) == "marker [x] not found", r.body[:300]
    r = get(world, "/v2.1/flavors?limit=1;limit=2")
    assert r.status == 200, (r.status, r.body[:300])
    assert len(json.loads(r.body)["flavors"]) == 2


def test_hostway_keeps_the_semicolon_in_the_value(world):
    """libmicrohttpd separates at '&' only: limit's one value is "1;limit=x"."""
    assert_refused(get(world, "/flavors?limit=1;limit=x"), 400, not_digits("limit", "1;limit=x"))


# -- an argument without '=' ---------------------------------------------------------------

def test_cinder_reads_a_limit_without_equals_as_empty(world):
    """params.pop('limit') is "" in webob: Cinder's int("") fails."""
    assert_refused(get(world, "/v3/volumes?limit"), 400, "limit param must be an integer")
    assert get(world, "/v3/volumes?limit=1").status == 200


def test_glance_reads_a_limit_without_equals_as_empty(world):
    assert_refused(get(world, "/image/v2/images?limit"), 400, "limit param must be an integer")
    assert get(world, "/image/v2/images?limit=1").status == 200


# -- webob's percent-decoding --------------------------------------------------------------

@pytest.mark.parametrize("raw,value", [
    ("%%41", "%A"),         # the first '%' has nothing to read before the next
    ("%4%1", "\x04\x01"),   # one digit before a '%' is a byte
    ("x%4", "x\x04"),       # and one at the end
    ("%+4", "\x04"),        # '+' is a space, and int(" 4", 16) is 4
    ("%-1", "%-1"),         # int("-1", 16) is no byte
    ("%6g", "%6g"),         # nor is int("6g", 16)
    ("%-0", "%-0"),         # a byte 0 stays as the text that made it
])
def test_nova_decodes_percent_as_webob_does(world, raw, value):
    assert_refused(get(world, f"/v2.1/flavors?limit={raw}"), 400, not_digits("limit", value))


# -- a query that is not UTF-8 ---------------------------------------------------------------

@pytest.mark.parametrize("query", ["x=%FF", "%C3=1", "a=%C3%28", "a=%ED%A0%80", "a=%C0%AF"])
def test_nova_get_refuses_a_query_that_is_not_utf8(world, query):
    assert_refused(get(world, f"/v2.1/flavors?{query}"), 400, UTF8_400)
    assert_refused(get(world, f"/v2.1/?{query}"), 400, UTF8_400)


def test_nova_get_takes_utf8_once_decoded(world):
    """Each name and value is decoded alone: bytes that are UTF-8 together,
    split by '=', are not."""
    assert get(world, "/v2.1/flavors?x=%C3%A9").status == 200
    assert_refused(get(world, "/v2.1/flavors?x%C3=%A9"), 400, UTF8_400)


def test_raw_bytes_are_read_like_percent_escapes(world):
    with Conn(world.d.port) as c:
        c.send(b"GET /v2.1/flavors?x=\xff HTTP/1.1\r\nHost: x\r\nAuthorization: "
               + world.sa.headers["Authorization"].encode() + b"\r\n\r\n")
        assert_refused(c.read_response(), 400, UTF8_400)


def test_utf8_is_checked_in_nova_order(world):
    """Credentials first (401), then the version (a proxy API is 404 from
    2.36), then the query (400) before the method looks anything up."""
    assert_unauthorized(RawAsRequests(get(world, "/v2.1/flavors?x=%FF", auth=False)))
    assert_refused(get(world, "/v2.1/images?x=%FF", microversion="2.36"), 404,
                   "The resource could not be found.")
    assert_refused(get(world, "/v2.1/images?x=%FF", microversion="2.35"), 400, UTF8_400)
    assert_refused(get(world, "/v2.1/servers/nope/os-volume_attachments?x=%FF"), 400, UTF8_400)
    assert_refused(get(world, "/v2.1/servers/nope?x=%FF"), 400, UTF8_400)


def test_only_nova_gets_decode_the_query(world):
    """Nova reads req.GET in its GETs' query schemas only; the Hostway
    dialect, and Cinder's and Glance's methods that read no query, answer."""
    with Conn(world.d.port) as c:
        r = c.request("DELETE", "/v2.1/servers/nope?x=%FF",
                      [("Authorization", world.sa.headers["Authorization"])])
    assert r.status == 404, (r.status, r.body[:300])
    assert get(world, "/flavors?x=%FF").status == 200
    assert get(world, "/v3/volumes/nope?x=%FF").status == 404
    assert get(world, "/image/v2/images/nope?x=%FF").status == 404


# -- against webob itself -----------------------------------------------------------------------

def test_nova_decodes_as_webob_does_at_random(world):
    """Random values of limit, from the characters that webob's decoding
    treats specially, sent to Nova's flavors list: the 400 names each value
    as webob decodes it, or refuses the query as not UTF-8. Left out: a
    byte 0 (kept as its text) and a newline (Python's '$' matches before a
    final one, which attachd's digits check does not copy)."""
    from webob import Request

    rng = random.Random(20261206)
    alphabet = ["%", "%", "%", "0", "1", "4", "a", "F", "e", "g", "-", "+", "x", "C", "9"]
    checked = 0
    with Conn(world.d.port) as c:
        for _ in range(400):
            raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            query = f"limit={raw}"
            try:
                value = Request.blank("/", environ={"QUERY_STRING": query}).GET["limit"]
            except UnicodeDecodeError:
                value = None
            if value is not None and ("\x00" in value or "\n" in value):
                continue
            r = c.request("GET", f"/v2.1/flavors?{query}",
                          [("Authorization", world.sa.headers["Authorization"])])
            if value is None:
                assert_refused(r, 400, UTF8_400)
            elif value.isascii() and value.isdigit():
                assert r.status == 200, (raw, r.status, r.body[:300])
            else:
                assert (r.status, message(r)) == (400, not_digits("limit", value)), raw
            checked += 1
    assert checked > 300
