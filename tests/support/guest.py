"""Boot throw-away TCG guests under libvirt and watch disks come and go.

Used by the libvirt integration tests (tests/libvirt). Everything goes
through the `virsh` command line on qemu:///system (started by
scripts/libvirt-env), not through the python3-libvirt bindings:

- it works from any Python interpreter (a virtualenv or pyenv Python cannot
  import Debian's python3-libvirt), and needs no package beyond
  libvirt-clients, which the daemons need anyway;
- every step the tests take is a command that can be pasted into a shell
  when a test fails, and the tests are written in terms of `virsh
  attach-device` / `detach-device-alias`, the same calls the C driver makes
  through the API;
- these tests need no libvirt events: they poll the live XML, as a caller
  must anyway to confirm a detach (a detach that returned 0 is only a request).
The price is a process per call (about 20-40 ms, included in the timings).

A guest is either
- booted: the kernel and initrd made by tests/guest/build-guest (direct
  kernel boot); its /init prints "ATTACHD-GUEST READY" and then one
  "ATTACHD-GUEST DISKS name=serial ..." line on the serial console whenever
  the set of disks changes. The console goes to a file, read here; or
- guestless: no OS at all (SeaBIOS finds nothing to boot). Nobody answers
  ACPI hot-unplug requests, so a virtio-blk detach never completes.

Domains are TCG (type='qemu') q35 machines, 1 vCPU, 128 MiB, a virtio-scsi
controller, free pcie-root-ports for virtio-blk hot-plug (libvirt cannot add
root ports to a running domain), no network, no graphics. Guest.cleanup()
destroys and undefines (managed save, snapshots and nvram too) and checks
that the domain is gone; use the Guest as a context manager or call it in a
finally block.

Files the domain uses (kernel, initrd, console, volumes) must be in a
directory that the libvirt-qemu user can traverse: make it with
shared_dir(), not pytest's tmp_path (which is 0700).
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from xml.sax.saxutils import escape

URI = "qemu:///system"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_GUEST = os.path.join(ROOT, "tests", "guest", "build-guest")
LIBVIRT_ENV = os.path.join(ROOT, "scripts", "libvirt-env")
DEFAULT_GUEST_DIR = os.environ.get("ATTACHD_GUEST_DIR", os.path.join(ROOT, "build", "guest"))
# Boot to READY takes 4-15 s under TCG on a loaded 2-core machine (measured
# on the project machine); a boot that has not finished after this long is
# stuck and is retried once (Guest.boot).
BOOT_TIMEOUT = float(os.environ.get("ATTACHD_GUEST_BOOT_TIMEOUT", "90"))
DEFAULT_CMDLINE = "console=ttyS0 no_timer_check panic=-1 quiet"
MARK = "ATTACHD-GUEST"
# Longest serial each bus shows the guest (libvirt keeps the whole string).
SERIAL_LIMIT = {"scsi": 36, "virtio": 20}


class VirshError(RuntimeError):
    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.proc = proc
        super().__init__(f"{' '.join(cmd)} exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()}")


def virsh(*args, check=True, timeout=120):
    """Run `virsh -c qemu:///system ARGS`; return the CompletedProcess."""
    cmd = ["virsh", "-q", "-c", URI, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise VirshError(cmd, p)
    return p


def libvirt_answers():
    try:
        return virsh("version", check=False, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def domain_state(name):
    """`virsh domstate` ('running', 'shut off', ...), or 'undefined' when
    libvirt has no such domain. Raises VirshError on any other failure (no
    daemon), so that a cleanup never mistakes "cannot ask" for "gone"."""
    p = virsh("domstate", name, check=False)
    if p.returncode == 0:
        return p.stdout.strip()
    if "failed to get domain" in p.stderr or "Domain not found" in p.stderr:
        return "undefined"
    raise VirshError(["virsh", "domstate", name], p)


def domain_exists(name):
    return domain_state(name) != "undefined"


def domain_names():
    """Names of all domains, defined or running."""
    return virsh("list", "--all", "--name").stdout.split()


def build_guest(outdir=DEFAULT_GUEST_DIR):
    """Build (or find up to date) the guest kernel and initrd; return outdir."""
    p = subprocess.run([BUILD_GUEST, outdir], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"{BUILD_GUEST} {outdir} failed:\n{p.stdout}{p.stderr}")
    return outdir


def expected_serial(serial, bus):
    """The serial as the guest shows it on BUS ('scsi' or 'virtio')."""
    return serial[:SERIAL_LIMIT[bus]]


def unique_name(prefix="attachd-test"):
    """A domain name no other test run uses: PREFIX-PID-RANDOM."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# -- files libvirt-qemu must reach -------------------------------------------

def traversable_by_others(path):
    """True when every directory from / down to PATH is world-searchable
    (QEMU runs as libvirt-qemu, which owns none of them)."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def shared_dir(prefix="attachd-lv-", base=None):
    """A fresh 0755 directory that libvirt-qemu can traverse, under BASE
    ($ATTACHD_LIBVIRT_TMP, else the system temporary directory)."""
    base = base or os.environ.get("ATTACHD_LIBVIRT_TMP") or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o755)
    if not traversable_by_others(d):
        shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"{d}: a parent directory is not searchable by others, so "
                           "libvirt-qemu cannot open files there; set ATTACHD_LIBVIRT_TMP")
    return d


def sparse_file(path, size=64 << 20):
    """A sparse raw volume of SIZE bytes (default 64 MiB); returns PATH."""
    with open(path, "wb") as f:
        f.truncate(size)
    os.chmod(path, 0o644)
    return path


def disk_xml(path, serial, alias, bus="scsi", target=None):
    """<disk> for `virsh attach-device`: a raw file on BUS ('scsi' or
    'virtio'), with <serial> and a user alias (libvirt wants 'ua-' first)."""
    if not alias.startswith("ua-"):
        raise ValueError("user aliases must start with 'ua-'")
    if target is None:
        target = {"scsi": "sdz", "virtio": "vdz"}[bus]
    return f"""<disk type='file' device='disk'>
  <driver name='qemu' type='raw' cache='none' io='native'/>
  <source file='{escape(path)}'/>
  <target dev='{target}' bus='{bus}'/>
  <serial>{escape(serial)}</serial>
  <alias name='{escape(alias)}'/>
</disk>
"""


# -- the console --------------------------------------------------------------

_LINE = re.compile(MARK + r" (READY|DISKS(?: .*)?|ERROR .*)$")


def console_lines(path):
    """The guest's complete console lines (the emulated UART can leave half a
    line at the end of the file: it is not returned)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")[:-1]        # the last piece has no newline yet
    return [ln.rstrip("\r") for ln in lines]


def guest_events(path):
    """(kind, rest) for each complete ATTACHD-GUEST line, in order."""
    out = []
    for ln in console_lines(path):
        m = _LINE.search(ln)
        if m:
            kind, _, rest = m.group(1).partition(" ")
            out.append((kind, rest))
    return out


def parse_disks(rest):
    """'sda=S1 vda=S2' -> {'sda': 'S1', 'vda': 'S2'}"""
    disks = {}
    for tok in rest.split():
        name, _, serial = tok.partition("=")
        disks[name] = serial
    return disks


# -- a domain -----------------------------------------------------------------

class GuestError(RuntimeError):
    pass


class Guest:
    """One TCG q35 domain. guest_dir=None: guestless (no OS)."""

    def __init__(self, name, workdir, guest_dir=None, memory_mib=128,
                 hotplug_slots=4, persistent=True, cmdline=None):
        if memory_mib > 256:
            raise ValueError("test domains get at most 256 MiB")
        self.name = name
        self.workdir = workdir
        self.guest_dir = guest_dir
        self.memory_mib = memory_mib
        self.hotplug_slots = hotplug_slots
        self.persistent = persistent
        self.console = os.path.join(workdir, f"{name}.console")
        self.kernel = self.initrd = None
        self.cmdline = cmdline
        self.boot_seconds = None
        self.boots = 0

    # the domain XML
    def xml(self):
        if self.guest_dir:
            boot = (f"    <kernel>{escape(self.kernel)}</kernel>\n"
                    f"    <initrd>{escape(self.initrd)}</initrd>\n"
                    f"    <cmdline>{escape(self.cmdline)}</cmdline>\n")
        else:
            # nothing to boot; no reboot every 60 s either
            boot = "    <bios rebootTimeout='-1'/>\n"
        # one root port for the virtio-scsi controller, the rest stay free
        ports = "".join(f"    <controller type='pci' index='{i}' model='pcie-root-port'/>\n"
                        for i in range(1, self.hotplug_slots + 2))
        return f"""<domain type='qemu'>
  <name>{escape(self.name)}</name>
  <memory unit='MiB'>{self.memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
{boot}  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
{ports}    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{escape(self.console)}' append='off'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
"""

    def _prepare(self):
        if not traversable_by_others(self.workdir):
            raise GuestError(f"{self.workdir} is not reachable by libvirt-qemu (use shared_dir())")
        if self.guest_dir and self.kernel is None:
            # a private copy: libvirt relabels the kernel and initrd for the
            # domain's lifetime, and other domains may boot the same build
            for f in ("vmlinuz", "initrd.img"):
                src = os.path.join(self.guest_dir, f)
                if not os.path.isfile(src):
                    raise GuestError(f"{src} is missing: run tests/guest/build-guest {self.guest_dir}")
                shutil.copyfile(src, os.path.join(self.workdir, f"{self.name}.{f}"))
            self.kernel = os.path.join(self.workdir, f"{self.name}.vmlinuz")
            self.initrd = os.path.join(self.workdir, f"{self.name}.initrd.img")
            if self.cmdline is None:
                try:
                    with open(os.path.join(self.guest_dir, "cmdline")) as f:
                        self.cmdline = f.read().strip()
                except FileNotFoundError:
                    self.cmdline = DEFAULT_CMDLINE

    def start(self):
        """Define and start (persistent) or create (transient) the domain."""
        if domain_exists(self.name):
            raise GuestError(f"a domain named {self.name} exists already")
        self._prepare()
        path = os.path.join(self.workdir, f"{self.name}.xml")
        with open(path, "w") as f:
            f.write(self.xml())
        self.boots += 1
        self._t_start = time.monotonic()
        if self.persistent:
            virsh("define", path)
            virsh("start", self.name)
        else:
            virsh("create", path)

    def boot(self, timeout=BOOT_TIMEOUT, retries=1):
        """start() and wait_ready(); a boot that does not reach READY in time
        is destroyed and started again, RETRIES times. Returns the seconds
        from start to READY."""
        for attempt in range(retries + 1):
            self.start()
            try:
                return self.wait_ready(timeout)
            except GuestError:
                if attempt == retries:
                    raise
                self.cleanup()
        raise AssertionError("not reached")

    def state(self):
        return domain_state(self.name)

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        """Wait for ATTACHD-GUEST READY and the first DISKS line; return the
        seconds since start()."""
        if not self.guest_dir:
            raise GuestError("a guestless domain never gets ready")
        deadline = time.monotonic() + timeout
        next_state = time.monotonic() + 1
        while True:
            events = guest_events(self.console)
            errors = [r for k, r in events if k == "ERROR"]
            if errors:
                raise GuestError(f"{self.name}: guest reported {errors}\n{self.console_tail()}")
            kinds = [k for k, _ in events]
            if "READY" in kinds and "DISKS" in kinds[kinds.index("READY"):]:
                self.boot_seconds = time.monotonic() - self._t_start
                return self.boot_seconds
            now = time.monotonic()
            if now > deadline:
                raise GuestError(f"{self.name}: not READY after {timeout:.0f}s "
                                 f"(state {self.state()}); console:\n{self.console_tail()}")
            if now > next_state:
                st = self.state()
                if st not in ("running", "paused"):
                    raise GuestError(f"{self.name} is {st} before READY; console:\n"
                                     f"{self.console_tail()}")
                next_state = now + 1
            time.sleep(0.05)

    def console_tail(self, n=25):
        return "\n".join(console_lines(self.console)[-n:]) or "(empty)"

    # disks as the guest sees them
    def disks(self):
        """{guest name: serial} from the latest complete DISKS line; None
        before the first one."""
        latest = None
        for kind, rest in guest_events(self.console):
            if kind == "DISKS":
                latest = rest
        return None if latest is None else parse_disks(latest)

    def wait_serial(self, serial, present=True, timeout=30):
        """Wait until a disk with exactly SERIAL is (present=True) or is no
        longer (False) in the guest; return the guest's disk name (or None)."""
        deadline = time.monotonic() + timeout
        while True:
            disks = self.disks() or {}
            names = [n for n, s in disks.items() if s == serial]
            if present and names:
                return names[0]
            if not present and not names:
                return None
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: serial {serial!r} still "
                                 f"{'absent' if present else 'present'} after {timeout}s; "
                                 f"guest disks {disks}")
            time.sleep(0.02)

    # disks as libvirt sees them
    def live_xml(self):
        return virsh("dumpxml", self.name).stdout

    def has_alias(self, alias):
        return f"<alias name='{alias}'/>" in self.live_xml()

    def attach(self, xml):
        path = os.path.join(self.workdir, f"{self.name}.dev-{uuid.uuid4().hex[:8]}.xml")
        with open(path, "w") as f:
            f.write(xml)
        try:
            virsh("attach-device", self.name, path, "--live")
        finally:
            os.unlink(path)

    def detach_alias(self, alias):
        """Ask for the device to go; it is not gone until wait_alias_gone()."""
        virsh("detach-device-alias", self.name, alias, "--live")

    def wait_alias_gone(self, alias, timeout=30):
        """True once ALIAS left the live XML; False if it is still there after
        TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while self.has_alias(alias):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # the end
    def cleanup(self):
        """Destroy and undefine; never leaves the domain behind (raises if it
        cannot be removed)."""
        for _ in range(5):
            st = self.state()
            if st == "undefined":
                return
            if st != "shut off":
                virsh("destroy", self.name, check=False)
                st = self.state()
            if st == "shut off":
                p = virsh("undefine", self.name, "--managed-save", "--snapshots-metadata",
                          "--checkpoints-metadata", "--nvram", check=False)
                if p.returncode != 0:
                    virsh("undefine", self.name, check=False)
            if self.state() == "undefined":
                return
            time.sleep(0.5)
        raise GuestError(f"could not remove domain {self.name} (state {self.state()})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
