"""Fixtures shared by every black-box suite (tests/api, tests/compat)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))

from attachd import Attachd  # noqa: E402


@pytest.fixture
def daemon(tmp_path):
    """A fresh attachd on its own port and database, stopped afterwards.

    The test checks that it exits 0 on SIGTERM unless the test stopped it.
    """
    d = Attachd(tmp_path)
    d.start()
    yield d
    if d.proc is not None:
        rc = d.stop()
        assert rc == 0, "attachd did not exit 0 on SIGTERM:\n" + d.read_log()


@pytest.fixture
def tenant(daemon):
    """An account with a member user; returns (daemon, account_id, session)."""
    account = daemon.add_account("tenant")
    user, pw = daemon.add_user(account)
    return daemon, account, daemon.session(user, pw)
