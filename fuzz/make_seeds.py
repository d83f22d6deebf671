#!/usr/bin/env python3
"""Write the seed corpora of the harnesses into fuzz/corpus/<harness>/.

The fuzz_api seeds are the requests of docs/api.md and of the Hostway seed
page (DetachVolumeFromServer), against the ids fuzz_api.c puts in its store,
plus a few hostile variants: limits, quotas, metadata at its bounds. Run it
again after changing the lists; file names are stable (a hash of the
content). It rewrites the seed directories: merge a fuzzing run's corpus
into them afterwards (README.md).
"""
import base64
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
AUTH = ["none", "demo", "ops", "other", "eve", "nobody", "raw", "basic+raw"]


def api_input(method, path, auth="demo", body=b"", osapi=None, xnova=None, host=None,
              rawauth="", json_ct=False, oom=0, proxied=False, public_url=False):
    """oom=n: the request's n-th new arena chunk fails (1-15); proxied: host is
    a trusted proxy's X-Forwarded-Host (and the scheme https); public_url:
    --public-url is set."""
    flags = oom << 4
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
    m = METHODS.index(method) | (8 if proxied else 0) | (16 if public_url else 0)
    head = bytes([m, AUTH.index(auth), flags])
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
    # limits: Nova's fields by microversion, Hostway's volume quotas, Cinder's
    a(api_input("GET", "/limits"))
    a(api_input("GET", "/accounts/acct-0002/flexcloud/limits", auth="other"))
    a(api_input("GET", "/v2.1/limits", osapi="compute 2.35"))
    a(api_input("GET", "/v2.1/limits", osapi="compute 2.39"))
    a(api_input("GET", "/v2.1/limits", osapi="compute 2.57"))
    a(api_input("GET", "/v2.1/limits?tenant_id=acct-0002", osapi="compute 2.75"))
    a(api_input("GET", "/v2.1/limits?tenant_id=acct-0002", auth="ops"))
    a(api_input("GET", "/v2.1/limits?tenant_id=acct-0001&x=1", auth="ops", osapi="compute 2.75"))
    a(api_input("GET", "/v2.1/acct-0001/limits", auth="ops"))
    a(api_input("GET", "/v3/limits"))
    a(api_input("GET", "/v3/acct-0002/limits", auth="other"))
    a(api_input("POST", "/v2.1/limits", body={}))
    # quotas: acct-0002 (other) is full; a big flavor or volume for acct-0001
    a(api_input("POST", "/servers", auth="other", body={"server": {
        "name": "one-more", "flavorRef": "1", "imageRef": "img"}}))
    a(api_input("POST", "/v2.1/servers", auth="other", body={"server": {
        "name": "one-more", "flavorRef": "1", "imageRef": "img"}}))
    a(api_input("POST", "/v2.1/servers", body={"server": {
        "name": "huge", "flavorRef": "5", "imageRef": "img"}}))
    a(api_input("POST", "/volumes", auth="other", body={"volume": {"size": 6}}))
    a(api_input("POST", "/v2.1/os-volumes", auth="other", body={"volume": {"size": 6}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1000}}))
    a(seq(api_input("POST", "/volumes", auth="other", body={"volume": {"size": 5}}),
          api_input("POST", "/volumes", auth="other", body={"volume": {"size": 1}}),
          api_input("GET", "/limits", auth="other")))
    a(seq(api_input("POST", "/v2.1/servers", body={"server": {
              "name": "big-1", "flavorRef": "5", "imageRef": "img"}}),
          api_input("POST", "/v2.1/servers", body={"server": {
              "name": "big-2", "flavorRef": "5", "imageRef": "img"}}),
          api_input("GET", "/v2.1/limits")))
    a(api_input("POST", "/servers", auth="ops", body={"server": {
        "name": "unlimited", "flavorRef": "5", "imageRef": "img"}}))
    # metadata: Nova's parameter_types.metadata for servers, Cinder's rules for
    # volumes; 128 items pass, 129 are 403; keys and values of 255 characters
    # pass, 256 do not; an empty key; a value that is not a string
    md128 = {"m%d" % i: "" for i in range(128)}
    md129 = {"m%d" % i: "" for i in range(129)}
    k255, v255 = "k" * 255, "v" * 255
    server = {"name": "meta", "flavorRef": "1", "imageRef": "img"}
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata=md128)}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata=md129)}))
    a(api_input("POST", "/servers", body={"server": dict(server, metadata={k255: v255})}))
    a(api_input("POST", "/servers", body={"server": dict(server, metadata={k255 + "k": "x"})}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata={"k": v255 + "v"})}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata={"": "x"})}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata={"a/b": "x", "c": 1})}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata={"é" * 200: "x"})}))
    a(api_input("POST", "/v2.1/servers", body={"server": dict(server, metadata=[])}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": md128}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": md129}}))
    a(api_input("POST", "/v2.1/os-volumes", body={"volume": {"size": 1, "metadata": {k255: v255}}}))
    a(api_input("POST", "/v2.1/os-volumes", body={"volume": {"size": 1, "metadata": {k255 + "k": ""}}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": {"k": v255 + "v"}}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": {"": "x"}}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": {"k": 1}}}))
    a(api_input("POST", "/volumes", body={"volume": {"size": 1, "metadata": {"é" * 256: "x"}}}))
    a(api_input("POST", "/v2.1/os-volumes", body={"volume": {"size": 1, "metadata": {"a/b": None}}}))
    a(seq(api_input("POST", "/v2.1/servers", osapi="compute 2.89",
                    body={"server": dict(server, networks="none",
                                        metadata={"role": "db", "tier": "1"})}),
          api_input("GET", "/v2.1/servers/detail?name=meta", osapi="compute 2.89")))
    # operators: the health check (a write through the store's writer), the
    # metrics (admins only; Prometheus text)
    a(api_input("GET", "/healthcheck", auth="none"))
    a(api_input("HEAD", "/healthcheck", auth="none"))
    a(api_input("POST", "/healthcheck", auth="none"))
    a(api_input("GET", "/metrics", auth="ops"))
    a(api_input("GET", "/metrics", auth="demo"))
    a(api_input("GET", "/metrics", auth="none"))
    a(api_input("DELETE", "/metrics", auth="ops"))
    a(seq(api_input("GET", "/v2.1/servers/nope"), api_input("GET", "/healthcheck", auth="none"),
          api_input("GET", "/metrics", auth="ops")))
    # links: the Host header, a trusted proxy's X-Forwarded-Host, --public-url
    a(api_input("GET", "/v2.1/servers", host="cloud.example:8774"))
    a(api_input("GET", "/v2.1/servers", host="proxy.example, inner", proxied=True))
    a(api_input("GET", "/volumes", host=" bad host/", proxied=True))
    a(api_input("GET", "/v2.1/os-volumes/detail", public_url=True))
    a(api_input("POST", "/servers", host="h\u00e9st", proxied=True, body={"server": {
        "name": "app", "flavorRef": "1", "imageRef": "img"}}))
    a(api_input("POST", "/volumes", host="[::1]:8774", public_url=True, body={"volume": {"size": 1}}))
    a(api_input("GET", "/", auth="none", host="x" * 256))
    # out of memory at the n-th new chunk: 503 (or the answer, if it needs fewer)
    a(api_input("GET", "/v2.1/servers/detail", oom=1))
    a(api_input("GET", "/servers/detail?limit=3", oom=2))
    a(seq(api_input("POST", "/v2.1/servers", oom=1, body={"server": dict(server, metadata=md128)}),
          api_input("GET", "/v2.1/limits")))
    a(seq(api_input("POST", f"/servers/{S13}/os-volume_attachments", oom=1,
                    body={"volumeAttachment": {"volumeId": V_FREE}}),
          api_input("GET", f"/servers/{S13}/os-volume_attachments")))
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
    return [b("demo:secret"), b("ops:0ps-secret"), b("demo:wrong"), b("caf\u00e9:p\u00e4ss:word"),
            b("caf\u00e9:x"), b("nobody:x"), b("user:"), b(":nouser"),
            b("caf\u00e9:p\u00e4ss"), b"Basic", b"Basic ", b"basic\tZGVtbzpzZWNyZXQ=  ",
            b"Basic ZmFrZV9hdXRoZW50aWNhdGlvbl9zdHJpbmc=", b"Bearer abc", b"Basic ZGVtbw",
            b"Basic ZGVtbzp\xff", ("Basic " + base64.b64encode(b"a:\xed\xa0\x80").decode()).encode()]


def microversion_seeds():
    return [b"2.1", b"2.89", b"2.0", b"1.0", b"2.90", b"02.1", b"2.01", b"2.", b".1", b"2",
            b"latest", b"2.1000000", b"10000000.1", b"2.1 ", b" 2.1", b"3.5", b"2.-1"]


def config_seeds():
    # byte 0 sizes the error buffer (% 64 + 1), the rest is the file
    return [bytes([63]) + text for text in [
        b"[db]\npath = /var/lib/attachd/attachd.db\n\n[serve]\nlisten = 0.0.0.0:8774\n"
        b"threads = 4\nwrite_threads = 16\ntimeout = 30\nmax_connections = 4096\n"
        b"max_per_ip = 128\n",
        b"# comment\n; other\nkey = \"quoted value\"\n[ spaced ]\n a = b = c \n",
        b"[account]\nname=x\n[user]\nrole = member\n[x\n",
        b"novalue\n",
        b"[db]\npath = a\npath = b\n",
        b" = empty key\n",
        # the option table: every section, values at their bounds, aliases
        b"path = data/a.db\n[serve]\nlisten = [::1]:8774\nthreads = 256\ntimeout = 1\n"
        b"header_timeout = 3600\nmax_connections = 65536\nmax_per_ip = 1\nsynchronous = NORMAL\n"
        b"public_url = https://cloud.example.com/attachd//\n"
        b"trusted_proxy = 10.0.0.0/8, ::1/128,,192.0.2.7\ndemo = yes\ndemo_domain = vm\n"
        b"[tls]\ncert = /etc/c.pem\nkey = /etc/k.pem\n[metrics]\nlisten = 127.0.0.1:9100\n"
        b"[log]\nformat = json\n[driver]\nkind = libvirt\nuri = qemu:///system\n"
        b"disk_bus = Virtio\ndetach_timeout = 20\nhostway_detach_wait = 0\n"
        b"reconcile_interval = 86400\n[volumes]\ndir = /var/lib/attachd/volumes\n",
        b"[serve]\ndb = x.db\n[db]\npath = y.db\n",
        b"[serve]\nlisten = ::1:8774\n",
        b"[serve]\nthreads = \" +7\"\ntimeout = 0\n",
        b"[serve]\npublic_url = ftp://x\n",
        b"[serve]\ntrusted_proxy = 1.2.3.4/33\n",
        b"[nope]\nx = 1\n",
        b"[serve]\nnope = 1\n",
        b"nope = 1\n",
        b"[empty]\n",
        # [flavor ID] sections (src/cli/options.c)
        b"[flavor 1]\nname = small\nvcpus = 1\nram_mb = 512\ndisk_gb = 0\n"
        b"[flavor  gp.x:2~]\nname = caf\xc3\xa9\nvcpus = +1024\nram_mb = 16777216\n"
        b"disk_gb = 1048576\n[serve]\nthreads = 2\n",
        b"[flavor a]\nname = n\nvcpus = 1\nram_mb = 1\n",
        b"[flavor a]\nname = n\nvcpus = 1\nram_mb = 1\ndisk_gb = 1\n"
        b"[flavor b]\nname = n\nvcpus = 1\nram_mb = 1\ndisk_gb = 1\n",
        b"[flavor a]\nname = n\nvcpus = 0\nram_mb = 1\ndisk_gb = 1\ncolor = red\n",
        b"[flavor]\n[flavor a/b]\n[flavor a]\n[flavor a]\n",
    ]]


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
        # byte 1 bit 3: as a request's step (arena); bits 4-5: metadata check
        # (1 servers, 2 volumes, 3 the count)
        bytes([1, 0x19]) + json.dumps({"role": "web", "a-b_c:d. e": "v" * 255}).encode(),
        bytes([1, 0x11]) + json.dumps({"k" * 256: "x", "ok": 1, "/": "y"}).encode(),
        bytes([1, 0x10]) + json.dumps({"\u00e9" * 3: "x", "k": "v" * 256}).encode(),
        bytes([1, 0x21]) + json.dumps({"k": "v", "": "x"}).encode(),
        bytes([1, 0x28]) + json.dumps({"\u00e9" * 256: "x"}, ensure_ascii=False).encode(),
        bytes([1, 0x20]) + json.dumps({"k": "\u00e9" * 256, "n": None}, ensure_ascii=False).encode(),
        bytes([1, 0x31]) + json.dumps({"m%d" % i: "" for i in range(129)}).encode(),
        bytes([1, 0x38]) + json.dumps({"m%d" % i: "" for i in range(128)}).encode(),
    ]


def framing_seeds():
    # byte 0: the version (0 HTTP/1.1, 1 HTTP/1.0, 4 HTTP/2.0, ...), then lines
    def h(v, *lines):
        return bytes([v]) + "\n".join(lines).encode()
    return [
        h(0, "Host: x", "Content-Length: 5"),
        h(0, "Host: x", "Transfer-Encoding: chunked", "Content-Type: application/json"),
        h(0, "Host: x", "Content-Length: 5", "Transfer-Encoding: chunked"),
        h(0, "Host: x", "Content-Length: 5", "Content-Length: 6"),
        h(0, "Host: x", "Content-Length: 5", "content-length: 5"),
        h(0, "Host: x", "Transfer-Encoding: gzip, chunked"),
        h(0, "Host: x", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        h(0, "Host: x", "Host: y"),
        h(0, "Host: x", "Content-Length : 5"),
        h(0, "Host: x", "Transfer-Encoding\t: chunked"),
        h(0, "Host: x", "Content-Length0: 5"),
        h(0, "Host : x"),
        h(0, "Hostname: x", "Host-Name: y"),
        h(0, "Content-Length: 0"),
        h(1, "Transfer-Encoding: chunked"),
        h(1, "Content-Length: 3"),
        h(4, "Transfer-Encoding: CHUNKED"),
        h(0, "Host: x", "Content-Type: application/json; Charset=UTF-8"),
    ]


def lvxml_seeds():
    # byte 0 % 3: 0 a domain's XML, 1 a disk to write and read back (path,
    # target, serial, alias; byte 1: block, virtio, direct), 2 target names
    dom = (b"<domain type='kvm'><name>vm</name><devices>\n"
           b"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
           b"<source file='/var/lib/attachd/volumes/vol-1'/><target dev='sdb' bus='scsi'/>"
           b"<serial>vol-1</serial><alias name='ua-6f1d0e46'/></disk>\n"
           b"<disk type='block' device='disk'><source dev='/dev/sdz'/>"
           b"<target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>\n"
           b"<disk type='network' device='disk'><source protocol='rbd' name='pool/img'/>"
           b"<target dev='vdb'/></disk>\n</devices></domain>")
    return [
        bytes([0, 0]) + dom,
        bytes([0, 0]) + b"<domain><devices><disk><alias name='ua-&amp;'/></disk></devices></domain>",
        bytes([1, 0]) + b"/var/lib/attachd/volumes/vol-1\nsdb\nvol-1\nua-6f1d0e46-4a5e",
        bytes([1, 7]) + b"/dev/x'y\"<z>&\nsd&b\nse<r>ial\nua-'",
        bytes([1, 2]) + "/v/\u00e9t\u00e9\nvdc\n\u00e9\nother".encode(),
        bytes([2, 0]) + b"sdaa",
        bytes([2, 1]) + b"zzzz",
        bytes([2, 3]) + b"hdb",
    ]


def write(name, items, corpus):
    d = os.path.join(corpus, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for data in items:
        h = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)
    print(f"{name}: {len(items)} seeds")


if __name__ == "__main__":
    # python3 fuzz/make_seeds.py [DIR]: the seeds into DIR/<harness>/
    # (default fuzz/corpus, whose directories it replaces)
    out = sys.argv[1] if len(sys.argv) > 1 else CORPUS
    write("fuzz_api", api_seeds(), out)
    write("fuzz_basic", basic_seeds(), out)
    write("fuzz_microversion", microversion_seeds(), out)
    write("fuzz_config", config_seeds(), out)
    write("fuzz_json", json_seeds(), out)
    write("fuzz_framing", framing_seeds(), out)
    write("fuzz_lvxml", lvxml_seeds(), out)
