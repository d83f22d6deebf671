"""Fixtures for the black-box API suite.

`daemon` and `tenant` (tests/conftest.py) give a fresh daemon per test. Most
read-mostly tests share one daemon per module through `world`, which holds two
tenant accounts (A and B, a member each) and an admin, so that the suite stays
fast: each test still creates the servers it changes.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from attachd import Attachd  # noqa: E402  (tests/support, via tests/conftest.py)


class World:
    def __init__(self, d):
        self.d = d
        self.base = d.base
        self.a = d.add_account(name="acct-a")
        self.b = d.add_account(name="acct-b")
        self.ops = d.add_account(name="acct-ops")
        self.a_user, self.a_pw = d.add_user(self.a)
        self.b_user, self.b_pw = d.add_user(self.b)
        self.admin_user, self.admin_pw = d.add_user(self.ops, role="admin")
        self.sa = d.session(self.a_user, self.a_pw)
        self.sb = d.session(self.b_user, self.b_pw)
        self.admin = d.session(self.admin_user, self.admin_pw)
        self.anon = d.session()

    def account_of(self, who):
        return {"a": self.a, "b": self.b, "admin": self.ops}[who]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = Attachd(tmp_path_factory.mktemp("world"))
    d.start()
    w = World(d)
    yield w
    if d.proc is not None:
        rc = d.stop()
        assert rc == 0, "attachd did not exit 0 on SIGTERM:\n" + d.read_log()
