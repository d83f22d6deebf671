"""Fixtures for the client compatibility suite.

`daemon` (tests/conftest.py) starts a fresh attachd on a random port with a
temporary database for every test; `cloud` adds an account with a member and an
admin user to it through the CLI.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compat_util import Cloud, OpenStackCLI, write_clouds_yaml  # noqa: E402


@pytest.fixture
def cloud(daemon):
    return Cloud(daemon)


@pytest.fixture
def osc(cloud, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return OpenStackCLI(write_clouds_yaml(cloud, tmp_path), home)
