#!/usr/bin/env python3
"""Write the seed corpora of the harnesses into fuzz/corpus/<harness>/.

The fuzz_api seeds are the requests of docs/api.md and of the seed page
(shared/seed/DetachVolumeFromServer.txt), against the ids fuzz_api.c puts in
its store, plus a few hostile variants. Run it again after changing the
lists; file names are stable (a hash of the content).
"""
import base64
import hashlib
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
AUTH = ["none", "demo", "ops", "other", "eve", "nobody", "raw", "basic+raw"]


def api_input(method, path, auth="demo", body=b"", osapi=None, xnova=None, host=None,
              rawauth="", json_ct=False):
    flags = 0
    if osapi is not None:
        flags |= 1
    if xnova is not None:
        flags |= 2
    if host is not None:
        flags |= 4
    if json_ct:
        flags |= 8
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    fields = [path, osapi or "", xnova or "", host or "", rawauth]
    head = bytes([METHODS.index(method), AUTH.index(auth), flags])
    return head + b"\n".join(f.encode() if isinstance(f, str) else f for f in fields) + b"\n" + body


SEP = b"\n\x1e\x1e\n"


def seq(*reqs):
    """Several requests in one input, run in order on the same state."""
    return SEP.join(reqs)


S13 = "test-server-0013"
V_ATT = "hbs2012May03_0OxRg0Jz7"
V_FREE = "hbs2012May08_61EfdIZ3Y"


def api_seeds():
    s = []
    a = s.append
    # version discovery
    a(api_input("GET", "/", auth="none"))
    a(api_input("GET", "/v2.1", auth="none", host="cloud.example:8774"))
    a(api_input("GET", "/v2.1/", auth="none"))
    a(api_input("GET", "/v3", auth="none"))
    # the seed page
    a(api_input("DELETE", f"/servers/{S13}/os-volume_attachments/{V_ATT}", json_ct=True))
    a(api_input("GET", f"/servers/{S13}/os-volume_attachments/fake_volume_id", json_ct=True))
    a(api_input("DELETE", f"/servers/fake_server_id/os-volume_attachments/{V_ATT}", json_ct=True))
    a(api_input("DELETE", f"/servers/{S13}/os-volume_attachments/{V_ATT}", auth="raw",
                rawauth="Basic ZmFrZV9hdXRoZW50aWNhdGlvbl9zdHJpbmc="))
    # Hostway servers
    a(api_input("GET", "/servers"))
    a(api_input("GET", "/servers", auth="none"))
    a(api_input("GET", "/accounts/acct-0001/flexcloud/servers/detail?limit=1"))
    a(api_input("GET", "/servers/detail?marker=no-such-server"))
    a(api_input("POST", "/servers", json_ct=True, body={"server": {
        "name": "app", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}}))
    a(api_input("POST", "/servers", body={"server": {
        "name": "from-volume", "flavorRef": "1", "block_device_mapping_v2": [{
            "boot_index": 0, "source_type": "volume", "uuid": "vol-0003",
            "destination_type": "volume"}]}}))
    a(api_input("POST", "/servers", body={"server": {"name": "app", "flavorRef": "1"}}))
    a(api_input("GET", f"/servers/{S13}"))
    a(api_input("GET", "/servers/fake_server_id"))
    a(api_input("POST", "/accounts/acct-0001/flexcloud/servers/test-server-0099/action",
                auth="ops", body={"lock": None}))
    a(api_input("POST", "/servers/test-server-0098/action", body={"unlock": None}))
    a(api_input("POST", "/servers/test-server-0099/action", body={"os-start": None}))
    a(api_input("POST", "/servers/test-server-0014/action", body={"reboot-please": None}))
    a(api_input("POST", f"/servers/{S13}/action", body={"os-stop": None}))
    a(api_input("DELETE", "/servers/test-server-0099"))
    a(api_input("DELETE", "/servers/test-server-0098", auth="ops"))
    # Hostway attachments
    a(api_input("POST", f"/servers/{S13}/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": V_FREE}}))
    a(api_input("POST", f"/accounts/acct-0001/flexcloud/servers/{S13}/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": V_FREE, "device": "/dev/test"}}))
    a(api_input("POST", f"/servers/{S13}/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": "vol-0005", "device": "/dev/vdb"}}))
    a(api_input("POST", f"/servers/{S13}/os-volume_attachments", body={"volumeAttachment": {}}))
    a(api_input("GET", f"/servers/{S13}/os-volume_attachments"))
    a(api_input("GET", f"/servers/{S13}/os-volume_attachments?limit=-1"))
    a(api_input("GET", f"/servers/{S13}/os-volume_attachments/{V_ATT}"))
    a(api_input("PUT", f"/servers/{S13}/os-volume_attachments/{V_ATT}",
                body={"volumeAttachment": {"volumeId": V_ATT, "delete_on_termination": True}}))
    a(api_input("PUT", f"/servers/{S13}/os-volume_attachments/{V_ATT}", auth="ops",
                body={"volumeAttachment": {"volumeId": "vol-0003"}}))
    a(api_input("DELETE", "/accounts/acct-0001/flexcloud/servers/test-server-0014/"
                "os-volume_attachments/vol-0004"))
    # Hostway volumes
    a(api_input("POST", "/volumes", body={"volume": {
        "display_name": "vol-001", "display_description": "Another volume.", "size": 30,
        "volume_type": "", "metadata": {"contents": "junk"}, "availability_zone": "nova"}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 0}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "snapshot_id": "snap-0001"}}))
    a(api_input("GET", "/volumes?limit=2"))
    a(api_input("GET", "/volumes?offset=x"))
    a(api_input("GET", "/accounts/acct-0001/flexcloud/volumes/detail?limit=1&offset=1"))
    a(api_input("GET", "/volumes/vol-0004"))
    a(api_input("DELETE", "/volumes/vol-0005"))
    a(api_input("DELETE", "/volumes/vol-0004"))
    # Nova
    a(api_input("GET", "/v2.1/servers?name=db"))
    a(api_input("GET", "/v2.1/servers?limit=2"))
    a(api_input("GET", "/v2.1/acct-0001/servers/detail?limit=1"))
    a(api_input("POST", "/v2.1/servers", osapi="compute 2.79", body={"server": {
        "name": "from-volume-2", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"boot_index": 0, "source_type": "volume",
                                     "uuid": "vol-0005", "destination_type": "volume",
                                     "delete_on_termination": True}]}}))
    a(api_input("POST", "/v2.1/servers", body={"server": {"name": "app", "flavorRef": "1",
                                                         "imageRef": "x"}}))
    a(api_input("GET", "/v2.1/servers/test-server-0014", osapi="compute 2.79"))
    a(api_input("GET", f"/v2.1/servers/{S13}", osapi="compute latest"))
    a(api_input("POST", "/v2.1/servers/test-server-0098/action", body={"pause": None}))
    a(api_input("POST", "/v2.1/acct-0001/servers/test-server-0098/action", auth="ops",
                body={"lock": None}))
    a(api_input("POST", f"/v2.1/servers/{S13}/action", body={"shelve": None}))
    a(api_input("DELETE", "/v2.1/servers/test-server-0098", auth="ops"))
    a(api_input("POST", f"/v2.1/servers/{S13}/os-volume_attachments", osapi="compute 2.79",
                body={"volumeAttachment": {"volumeId": "vol-0003", "tag": "logs",
                                           "delete_on_termination": True}}))
    a(api_input("POST", f"/v2.1/acct-0001/servers/{S13}/os-volume_attachments",
                xnova="2.49", body={"volumeAttachment": {"volumeId": "vol-0003", "tag": "logs"}}))
    a(api_input("GET", f"/v2.1/servers/{S13}/os-volume_attachments", osapi="compute 2.89"))
    a(api_input("GET", f"/v2.1/servers/{S13}/os-volume_attachments?sort=device",
                osapi="compute 2.75"))
    a(api_input("GET", f"/v2.1/servers/{S13}/os-volume_attachments/{V_ATT}",
                osapi="compute 2.89"))
    a(api_input("PUT", f"/v2.1/servers/{S13}/os-volume_attachments/{V_ATT}",
                osapi="compute 2.85",
                body={"volumeAttachment": {"volumeId": V_ATT, "delete_on_termination": False}}))
    a(api_input("PUT", f"/v2.1/servers/{S13}/os-volume_attachments/{V_ATT}",
                osapi="compute 2.85", body={"volumeAttachment": {"volumeId": V_ATT,
                                                                 "tag": "data"}}))
    a(api_input("PUT", f"/v2.1/acct-0001/servers/{S13}/os-volume_attachments/{V_ATT}",
                auth="ops", body={"volumeAttachment": {"volumeId": "vol-0003"}}))
    a(api_input("DELETE", f"/v2.1/servers/{S13}/os-volume_attachments/{V_ATT}"))
    a(api_input("POST", "/v2.1/os-volumes", body={"volume": {"size": 1,
                                                           "display_name": "data"}}))
    a(api_input("GET", "/v2.1/os-volumes/detail"))
    a(api_input("GET", "/v2.1/os-volumes/vol-0005", osapi="compute 2.36"))
    a(api_input("DELETE", "/v2.1/os-volumes/vol-0003"))
    a(api_input("GET", "/v3/acct-0001/volumes?name=data"))
    a(api_input("GET", "/v3/acct-0001/volumes/detail?limit=1&offset=1"))
    a(api_input("GET", f"/v3/acct-0001/volumes/{V_ATT}"))
    # hostile variants
    a(api_input("POST", "/v2.1/servers", body=b'{"server": {"name": '))
    a(api_input("POST", "/v2.1/servers", body={"server": {"name": ["x" * 40],
                                                         "flavorRef": 1.5}}))
    a(api_input("POST", f"/servers/{S13}/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": "v" * 300}}))
    a(api_input("GET", "/servers/" + "9" * 300))
    a(api_input("GET", "/v2.1/servers", osapi="compute 2.999999999"))
    a(api_input("GET", "/v2.1/servers", osapi="compute 02.1"))
    a(api_input("GET", "/v2.1/servers", auth="raw", rawauth="Basic !!!"))
    a(api_input("GET", "/v2.1/servers", auth="eve"))
    a(api_input("PATCH", "/servers/test-server-0013"))
    a(api_input("GET", "/servers/%C3%A9t%C3%A9", host="h\xc3\xa9st"))
    a(api_input("GET", "/servers//detail"))
    a(api_input("GET", "/accounts/acct-0002/flexcloud/servers"))
    a(api_input("POST", "/v2.1/servers", osapi="compute 2.52", body={"server": {
        "name": "meta", "flavorRef": 2, "imageRef": "img", "metadata": {"a": "b", "c": 1},
        "networks": "auto", "tags": ["x"], "min_count": "1", "config_drive": "yes",
        "block_device_mapping_v2": [7, {"boot_index": "0", "source_type": "volume",
                                        "uuid": "bad id"}]}}))
    a(api_input("POST", "/servers/test-server-0097/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": "vol-0003", "device": "/dev/sdb"}}))
    a(api_input("POST", "/servers/test-server-0096/action", body={"os-stop": {}}))
    a(api_input("POST", "/servers/test-server-0095/os-volume_attachments",
                body={"volumeAttachment": {"volumeId": "vol-0006"}}))
    a(api_input("DELETE", "/volumes/vol-0006"))
    # sequences: attach then swap then detach; stop then attach; create then delete
    a(seq(api_input("POST", f"/v2.1/servers/{S13}/os-volume_attachments",
                    body={"volumeAttachment": {"volumeId": "vol-0003"}}),
          api_input("PUT", f"/v2.1/servers/{S13}/os-volume_attachments/vol-0003", auth="ops",
                    body={"volumeAttachment": {"volumeId": "vol-0005"}}),
          api_input("GET", f"/v2.1/servers/{S13}/os-volume_attachments", osapi="compute 2.89"),
          api_input("DELETE", f"/servers/{S13}/os-volume_attachments/vol-0005")))
    a(seq(api_input("PUT", f"/v2.1/servers/{S13}/os-volume_attachments/vol-0007", auth="ops",
                    body={"volumeAttachment": {"volumeId": "vol-0003"}}),
          api_input("DELETE", f"/v2.1/servers/{S13}", auth="ops")))
    a(seq(api_input("POST", f"/servers/{S13}/action", body={"suspend": None}),
          api_input("POST", f"/servers/{S13}/os-volume_attachments",
                    body={"volumeAttachment": {"volumeId": V_FREE}}),
          api_input("POST", f"/servers/{S13}/action", body={"resume": None}),
          api_input("DELETE", f"/servers/{S13}/os-volume_attachments/{V_ATT}")))
    a(seq(api_input("POST", "/v2.1/os-volumes", body={"volume": {"size": "3"}}),
          api_input("GET", "/v2.1/os-volumes/detail?limit=1&offset=0"),
          api_input("DELETE", "/v2.1/servers/test-server-0014", auth="ops"),
          api_input("GET", "/v3/acct-0001/volumes/detail")))
    return s


def basic_seeds():
    def b(s):
        return ("Basic " + base64.b64encode(s.encode()).decode()).encode()
    return [b("demo:secret"), b("ops:0ps-secret"), b("user:"), b(":nouser"),
            b("caf\u00e9:p\u00e4ss"), b"Basic", b"Basic ", b"basic\tZGVtbzpzZWNyZXQ=  ",
            b"Basic ZmFrZV9hdXRoZW50aWNhdGlvbl9zdHJpbmc=", b"Bearer abc", b"Basic ZGVtbw",
            b"Basic ZGVtbzp\xff", ("Basic " + base64.b64encode(b"a:\xed\xa0\x80").decode()).encode()]


def microversion_seeds():
    return [b"2.1", b"2.89", b"2.0", b"1.0", b"2.90", b"02.1", b"2.01", b"2.", b".1", b"2",
            b"latest", b"2.1000000", b"10000000.1", b"2.1 ", b" 2.1", b"3.5", b"2.-1"]


def config_seeds():
    return [
        b"[db]\npath = /var/lib/attachd/attachd.db\n\n[serve]\nlisten = 0.0.0.0:8774\n"
        b"threads = 4\nwrite_threads = 16\ntimeout = 30\nmax_connections = 4096\n"
        b"max_per_ip = 128\n",
        b"# comment\n; other\nkey = \"quoted value\"\n[ spaced ]\n a = b = c \n",
        b"[account]\nname=x\n[user]\nrole = member\n[x\n",
        b"novalue\n",
        b"[db]\npath = a\npath = b\n",
        b" = empty key\n",
    ]


def json_seeds():
    # byte 0: version (0..255 -> 1..89), byte 1: dialect bit, then JSON
    def j(v, nova, text):
        return bytes([v, 1 if nova else 0]) + text.encode()
    return [
        j(1, True, '{"name": "ab", "count": 2}'),
        j(79, True, '{"volumeId": "vol-1", "device": "/dev/vdb", "tag": "t", '
                    '"delete_on_termination": "yes"}'),
        j(1, False, '{"name": 1.5e300, "num": "12", "x": [null, true, {"k\'": "v\\""}]}'),
        j(40, True, '{"flag": "maybe", "size": "-3", "word": "box"}'),
        j(1, True, '["caf\u00e9", 0.1, -0.0, 1e16, 123456789.123]'),
        j(1, True, '"' + "\u00e9" * 300 + '"'),
    ]


def write(name, items):
    d = os.path.join(CORPUS, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for data in items:
        h = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)
    print(f"{name}: {len(items)} seeds")


if __name__ == "__main__":
    write("fuzz_api", api_seeds())
    write("fuzz_basic", basic_seeds())
    write("fuzz_microversion", microversion_seeds())
    write("fuzz_config", config_seeds())
    write("fuzz_json", json_seeds())
