# attachd: a thin wrapper around Meson for the two commands the README opens
# with. `make run` and `make check` install whatever Debian packages are
# missing first (apt-get, only when missing), so they work on a fresh machine.

BUILD      ?= build
ASAN_BUILD ?= build-asan
LISTEN     ?= 127.0.0.1:8774
DB         ?= data/attachd.db
PYTHON     ?= /usr/bin/python3
# `make run` drives libvirt for real; `make run DRIVER=none` records state only
DRIVER     ?= libvirt
VOLUME_DIR ?= data/volumes

# What building needs, and what the test suites need on top.
BUILD_DEBS := gcc meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev \
              libsqlite3-dev libpq-dev libsodium-dev libcmocka-dev libvirt-dev libxml2-dev \
              libgnutls28-dev
# The hypervisor: QEMU and libvirt's daemons (started by scripts/libvirt-env).
HV_DEBS    := qemu-system-x86 libvirt-daemon-system libvirt-daemon-system-sysv libvirt-clients
# The operators' suites (tests/api/test_ops*.py, tests/install): a Prometheus
# parser, openssl for test certificates, man and groff for the man pages,
# systemd-analyze (systemd is installed for it, never started), and what
# dpkg-buildpackage needs to build the .deb.
OPS_DEBS   := python3-prometheus-client openssl man-db groff-base systemd \
              debhelper dpkg-dev fakeroot
# PostgreSQL: the throwaway cluster of scripts/pg-env (tests/unit/test_pg and
# the API suite on PostgreSQL, api-pg).
PG_DEBS    := postgresql postgresql-client
TEST_DEBS  := python3-pytest python3-requests python3-openstacksdk \
              python3-novaclient python3-openstackclient python3-tempest python3-libcloud python3-webob curl \
              golang-go golang-github-gophercloud-gophercloud-dev ansible $(HV_DEBS) \
              $(OPS_DEBS) $(PG_DEBS)

.PHONY: all build asan deps test-deps run check unit api compat clean install deb

all: build

deps:
	@scripts/ensure-debs $(BUILD_DEBS)

test-deps: deps
	@scripts/ensure-debs $(TEST_DEBS)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# With libvirt: its daemons started by PID (scripts/libvirt-env), and the demo
# server a running VM that attachd creates from a tiny image of the test
# guest (scripts/demo-image), whose disks are the volumes attached.
run: build
	@mkdir -p $(dir $(DB))
ifeq ($(DRIVER),libvirt)
	@scripts/ensure-debs $(HV_DEBS)
	@scripts/libvirt-env start
	@ATTACHD=$(BUILD)/attachd DB=$(DB) scripts/demo-image
endif
	./$(BUILD)/attachd serve --listen $(LISTEN) --db $(DB) --driver $(DRIVER) \
	    --volume-dir $(VOLUME_DIR) --demo

# Every suite, on the normal build and again under ASan+UBSan.
check: test-deps build asan
	@PYTHON=$(PYTHON) scripts/run-tests $(BUILD) $(ASAN_BUILD)

# Install as a service (docs/operations.md): the binary with the installed
# defaults (/etc/attachd, /var/lib/attachd), the man pages, the systemd unit
# and its sysusers.d entry, and /etc/attachd/attachd.conf unless there is one.
# DESTDIR works as usual.
PREFIX        ?= /usr/local
INSTALL_BUILD ?= build-install

$(INSTALL_BUILD)/build.ninja:
	meson setup $(INSTALL_BUILD) --buildtype=release --prefix=$(PREFIX) \
	    --sysconfdir=/etc --localstatedir=/var -Dfhs=true

install: deps $(INSTALL_BUILD)/build.ninja
	ninja -C $(INSTALL_BUILD)
	meson install -C $(INSTALL_BUILD) --no-rebuild

# The Debian package, in the parent directory (dpkg-buildpackage's way).
deb: deps
	@scripts/ensure-debs debhelper dpkg-dev fakeroot
	DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -b -us -uc

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(INSTALL_BUILD)
