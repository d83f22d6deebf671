"""Hostile input found by the fuzzers (fuzz/README.md): each case once broke
attachd's promise of a clear, dialect-correct error, and is kept here so that
it stays fixed."""
import json

from apiutil import assert_hostway_error, assert_nova_error, server_body

REPLACEMENT = "\ufffd"


def test_many_unexpected_members_give_a_bounded_message(world):
    """One member's request with tens of thousands of unexpected members once
    built the error message in quadratic memory and could kill the daemon.
    The message names what fits and ends in "..."."""
    body = server_body("many")
    body["server"].update({f"x{i}": 0 for i in range(40000)})
    r = world.sa.post(f"{world.base}/v2.1/servers", data=json.dumps(body),
                      headers={"Content-Type": "application/json"})
    fields = assert_nova_error(r, 400, "badRequest")
    msg = fields["message"]
    assert msg.startswith("Invalid input for field/attribute server. Value: "), msg
    assert "Additional properties are not allowed ('x0', 'x1', " in msg, msg
    assert "... were unexpected)" in msg, msg
    assert len(msg) < 2048, len(msg)
    # and the daemon is still there, serving
    assert world.sa.get(f"{world.base}/v2.1/servers").status_code == 200


def test_long_unicode_value_is_cut_between_characters(world):
    """A value shown in a message is cut at 500 bytes: once in the middle of a
    two-byte character, which made the message invalid UTF-8 and the answer
    a generic one."""
    body = server_body("cut")
    body["server"]["name"] = ["a" + "é" * 300]
    r = world.sa.post(f"{world.base}/v2.1/servers", json=body)
    msg = assert_nova_error(r, 400, "badRequest")["message"]
    assert msg.startswith("Invalid input for field/attribute name. Value: ['aéé"), msg
    assert "...." in msg and REPLACEMENT not in msg, msg


def test_microversion_that_is_not_utf8_is_quoted_safely(world):
    r = world.sa.get(f"{world.base}/v2.1/servers",
                     headers={"OpenStack-API-Version": b"compute 2.\xff"})
    assert_nova_error(r, 400, "badRequest",
                      f"API Version String 2.{REPLACEMENT} is of invalid format. Must be of "
                      "format MajorNum.MinorNum.")


def test_marker_that_is_not_utf8_keeps_the_hostway_shape(world):
    r = world.sa.get(f"{world.base}/servers/detail?marker=%FF")
    assert_hostway_error(r, 400, "badRequest", details=f"marker [{REPLACEMENT}] not found")


def test_unroutable_nova_paths_answer_in_nova_shape(world):
    for path in ["/v2.1//servers", "/v3//", "/v2.1/" + "a/" * 20]:
        r = world.sa.get(world.base + path)
        assert_nova_error(r, 404, "itemNotFound", "The resource could not be found.")
    r = world.sa.get(world.base + "/servers//x")
    assert_hostway_error(r, 404, "itemNotFound", "Resource not found", "")
