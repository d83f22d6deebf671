"""Smoke test of the libvirt test environment: libvirtd started by
scripts/libvirt-env, a TCG guest from tests/guest/build-guest, and disk
hot-plug through `virsh attach-device` / `detach-device-alias` seen from
inside the guest, on both buses. Then the case a real service must survive:
a virtio-blk detach that never completes because no guest OS answers.

Timings are measured and printed at the end of the run, never asserted
(TCG on a shared 2-core machine is slow and noisy).
"""
import os
import time
import uuid

import pytest

import guest as g


def volume_id():
    return str(uuid.uuid4())        # 36 characters, like the service's volume ids


def wait_gone(vm, alias, serial, t0, timeout=30):
    """Poll the live XML and the guest's console together after a detach;
    return (seconds until the alias left the XML, seconds until the guest
    stopped reporting SERIAL), both counted from T0 (time.monotonic())."""
    gone_xml = gone_guest = None
    while gone_xml is None or gone_guest is None:
        now = time.monotonic() - t0
        if gone_guest is None and serial not in (vm.disks() or {}).values():
            gone_guest = now
        if gone_xml is None and not vm.has_alias(alias):
            gone_xml = time.monotonic() - t0
        if now > timeout:
            pytest.fail(f"after {timeout}s: alias {alias} in XML: {gone_xml is None}, "
                        f"serial in guest: {gone_guest is None}; guest disks {vm.disks()}")
        time.sleep(0.01)
    return gone_xml, gone_guest


def test_hotplug_seen_by_guest(libvirt_env, guest_dir, workdir, timing):
    name = g.unique_name()
    with g.Guest(name, workdir, guest_dir, persistent=True) as vm:
        timing("boot to READY", vm.boot())
        assert vm.disks() == {}, vm.console_tail()

        for bus in ("scsi", "virtio"):
            vol = volume_id()
            alias = f"ua-{vol}"
            path = g.sparse_file(os.path.join(workdir, f"{vol}.raw"))
            want = g.expected_serial(vol, bus)

            t0 = time.monotonic()
            vm.attach(g.disk_xml(path, vol, alias, bus))
            timing(f"{bus}: attach call", time.monotonic() - t0)
            gname = vm.wait_serial(want, present=True, timeout=30)
            timing(f"{bus}: seen in guest", time.monotonic() - t0)
            assert vm.has_alias(alias)
            # libvirt keeps the whole serial; the guest sees up to 36
            # characters on SCSI (all of a UUID), the first 20 on virtio-blk
            assert f"<serial>{vol}</serial>" in vm.live_xml()
            seen = vm.disks()[gname]
            if bus == "scsi":
                assert gname.startswith("sd") and seen == vol
            else:
                assert gname.startswith("vd") and seen == vol[:20]

            t0 = time.monotonic()
            vm.detach_alias(alias)
            timing(f"{bus}: detach call", time.monotonic() - t0)
            gone_xml, gone_guest = wait_gone(vm, alias, want, t0)
            timing(f"{bus}: gone from XML", gone_xml)
            timing(f"{bus}: gone from guest", gone_guest)
            assert vm.disks() == {}, vm.console_tail()
        assert vm.state() == "running"
    assert not g.domain_exists(name)


def test_guestless_virtio_detach_never_completes(libvirt_env, workdir, timing):
    """No OS answers the ACPI eject request: libvirt accepts the detach, and
    the virtio-blk disk stays in the live XML. SCSI unplug needs no guest and
    completes. Destroying the domain still works."""
    name = g.unique_name()
    with g.Guest(name, workdir, guest_dir=None, persistent=False) as vm:
        vm.start()
        scsi, blk = volume_id(), volume_id()
        vm.attach(g.disk_xml(g.sparse_file(os.path.join(workdir, "scsi.raw")), scsi,
                             f"ua-{scsi}", "scsi"))
        vm.attach(g.disk_xml(g.sparse_file(os.path.join(workdir, "blk.raw")), blk,
                             f"ua-{blk}", "virtio"))
        assert vm.has_alias(f"ua-{scsi}") and vm.has_alias(f"ua-{blk}")

        t0 = time.monotonic()
        vm.detach_alias(f"ua-{scsi}")
        assert vm.wait_alias_gone(f"ua-{scsi}", timeout=10), "SCSI unplug needs no guest"
        timing("guestless scsi: gone from XML", time.monotonic() - t0)

        t0 = time.monotonic()
        vm.detach_alias(f"ua-{blk}")            # returns 0: only a request
        timing("guestless virtio: detach call", time.monotonic() - t0)
        assert not vm.wait_alias_gone(f"ua-{blk}", timeout=5), \
            "a virtio-blk detach completed without a guest OS"
        assert f"<serial>{blk}</serial>" in vm.live_xml()

        t0 = time.monotonic()
        vm.cleanup()                            # destroy works all the same
        timing("guestless: destroy", time.monotonic() - t0)
    assert not g.domain_exists(name)
