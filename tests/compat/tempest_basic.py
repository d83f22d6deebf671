"""A tempest.lib AuthProvider for HTTP Basic auth (no Keystone).

tempest.lib's service clients call `auth_provider.auth_request(method, url,
headers, body, filters)` for every request and `auth_provider.base_url(filters)`
for the endpoint. These two classes fill in the abstract parts of
tempest.lib.auth: the credentials are a username and password, the "token" is
base64(username:password), it never expires, and every request goes to one
fixed endpoint.

    creds = BasicCredentials(username="alice", password="secret")
    auth = BasicAuthProvider(creds, "http://127.0.0.1:8774/v2.1")
    servers = ServersClient(auth, "compute", "RegionOne")
"""
import base64

from tempest.lib import auth


class BasicCredentials(auth.Credentials):
    ATTRIBUTES = ["username", "password"]

    def is_valid(self):
        return self.username is not None and self.password is not None


class BasicAuthProvider(auth.AuthProvider):
    def __init__(self, credentials, endpoint, scope="project"):
        super().__init__(credentials, scope)
        self.endpoint = endpoint.rstrip("/")

    # -- the abstract methods -------------------------------------------------
    def _get_auth(self):
        raw = f"{self.credentials.username}:{self.credentials.password}".encode()
        return base64.b64encode(raw).decode(), {}

    def _fill_credentials(self, auth_data_body):
        pass

    def is_expired(self, auth_data):
        return False

    def base_url(self, filters, auth_data=None):
        return self.endpoint

    def _decorate_request(self, filters, method, url, headers=None, body=None, auth_data=None):
        if auth_data is None:
            auth_data = self.get_auth()
        token, _ = auth_data
        headers = dict(headers or {})
        headers["Authorization"] = "Basic " + token
        base = self.base_url(filters, auth_data)
        full = base + "/" + url.lstrip("/") if url else base
        return full, headers, body

    # -- used by RestClient.token -------------------------------------------
    def get_token(self):
        return self.get_auth()[0]
