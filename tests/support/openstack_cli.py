"""The real `openstack` CLI (Debian's python3-openstackclient) against an
attachd: HTTP Basic through keystoneauth1's http_basic plugin, the compute
endpoint at /v2.1, and the block-storage and image endpoints at attachd's
/v3/{account} and /image, in a clouds.yaml of the test's own."""
import json
import subprocess


class OpenstackCLI:
    def __init__(self, home, base, user, password, account, compute_version=None):
        conf = home / "clouds.yaml"
        conf.write_text("clouds:\n  attachd:\n    auth_type: http_basic\n    auth:\n"
                        f"      username: {user}\n      password: {password}\n"
                        f"      endpoint: {base}/v2.1\n"
                        f"    image_endpoint_override: {base}/image\n"
                        f"    block_storage_endpoint_override: {base}/v3/{account}\n")
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                    "OS_CLIENT_CONFIG_FILE": str(conf), "OS_CLOUD": "attachd"}
        self.version = ["--os-compute-api-version", compute_version] if compute_version else []

    def __call__(self, *args, as_json=True):
        """Run `openstack ARGS`; its JSON output (-f json), or its text."""
        p = subprocess.run(["/usr/bin/python3", "-m", "openstackclient.shell", *self.version,
                            *args, *(["-f", "json"] if as_json else [])],
                           env=self.env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return json.loads(p.stdout) if as_json else p.stdout
