"""Schemathesis hooks for `.ci/schemathesis`.

Every request carries an administrator's token. A fuzzed `POST /api/auth/logout` or `DELETE /api/auth/sessions/{id}` may end the session
its token belongs to, so those operations get a token of their own, logged in for each
request; every other operation shares one token, fetched again after a 401.

Requests meant to be valid (schemathesis' positive mode) get values that must exist in the
server's data, which no schema can know: role names become built-in roles, and a users cursor
(which only the server issues) is left out, and the administrator's own credentials are not
changed (the run would lock itself out). A signup whose password contains the username or
the email's local part is not generated as valid: that rule spans two fields.

`POST /oauth/token`, `/oauth/introspect` and `/oauth/revoke` authenticate a client, not a
user: they get no administrator's token. A request meant to be valid to the token endpoint is
the client-credentials grant of a client the hooks create, with its id and secret in the form
(`client_secret_post`); one to introspection or revocation keeps its generated token and hint
and gets that client's id and secret. A client's territory must exist, so a
valid request to create or change one names none, and a clients cursor is left out like the
users one.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

import schemathesis

BASE_URL = os.environ["SCHEMATHESIS_BASE_URL"]
USERNAME = os.environ["SCHEMATHESIS_ADMIN_USERNAME"]
PASSWORD = os.environ["SCHEMATHESIS_ADMIN_PASSWORD"]


def login() -> str:
    """The administrator's access token. A login the fuzzing load makes fail for a moment
    (a 503 "retry later" from a busy database) is tried again; what it answered is printed, so
    a lasting failure says why."""
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    last = None
    for attempt in range(6):
        request = urllib.request.Request(
            f"{BASE_URL}/api/auth/login",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
            if "access_token" in answer:
                return answer["access_token"]
            last = f"200 without a token: {answer}"
        except urllib.error.HTTPError as error:
            last = f"{error.code}: {error.read()[:300]!r}"
        except OSError as error:
            last = repr(error)
        print(f"schemathesis hooks: admin login attempt {attempt + 1} failed: {last}", file=sys.stderr)
        time.sleep(0.5 * 2**attempt)
    raise RuntimeError(f"the administrator's login failed: {last}")


class Admin:
    def get(self, case, context):
        return login()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Operations that can end the session of the token they are given: a fresh token each time.
schemathesis.auth(refresh_interval=None).apply_to(method="POST", path="/api/auth/logout").apply_to(
    method="DELETE", path="/api/auth/sessions/{id}"
)(Admin)

# Everything else but the OAuth endpoints: one token, fetched again once a 401 shows it has
# ended.
schemathesis.auth().skip_for(method="POST", path="/api/auth/logout").skip_for(
    method="DELETE", path="/api/auth/sessions/{id}"
).skip_for(method="POST", path="/oauth/token").skip_for(
    method="POST", path="/oauth/introspect"
).skip_for(method="POST", path="/oauth/revoke")(Admin)


BUILT_IN_ROLES = ["admin", "moderator", "user"]
ROLE_BODIES = {
    ("POST", "/api/users"),
    ("PATCH", "/api/users/{id}"),
    ("PUT", "/api/users/{id}/territories/{code}/roles"),
    ("POST", "/api/clients"),
    ("PATCH", "/api/clients/{id}"),
}
CLIENT_BODIES = {("POST", "/api/clients"), ("PATCH", "/api/clients/{id}")}
SIGNUPS = {("POST", "/api/auth/signup"), ("POST", "/api/auth/register"), ("POST", "/api/users")}


def is_positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def key(case):
    return (case.operation.method.upper(), case.operation.path)


_admin_id = None
_client = None


def oauth_client() -> dict:
    """A client of the run's own, created once, with its id and secret."""
    global _client
    if _client is None:
        body = json.dumps({"name": "schemathesis", "scopes": ["read", "write"]}).encode()
        request = urllib.request.Request(
            f"{BASE_URL}/api/clients",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {login()}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            _client = json.load(response)
    return _client


def admin_id() -> str:
    global _admin_id
    if _admin_id is None:
        request = urllib.request.Request(
            f"{BASE_URL}/api/auth/me", headers={"Authorization": f"Bearer {login()}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            _admin_id = json.load(response)["id"]
    return _admin_id


ADMIN_ITSELF = {("PATCH", "/api/users/{id}"), ("DELETE", "/api/users/{id}")}


@schemathesis.hook
def map_case(context, case):
    # The run's administrator is never deleted or changed, in any mode: once the fuzzer has
    # made a second admin, deleting the first is allowed, and every later login fails.
    if key(case) in ADMIN_ITSELF and (case.path_parameters or {}).get("id") == admin_id():
        case.path_parameters["id"] = "00000000-0000-4000-8000-000000000000"
    if not is_positive(case):
        return case
    # The fuzzer must not lock itself out: its own credentials are not changed.
    if key(case) == ("PATCH", "/api/users/{id}") and isinstance(case.body, dict):
        if (case.path_parameters or {}).get("id") == admin_id():
            for field in ("email", "username", "password", "password_hash", "is_active"):
                case.body.pop(field, None)
    if key(case) in ROLE_BODIES and isinstance(case.body, dict) and isinstance(case.body.get("roles"), list):
        roles = case.body["roles"]
        case.body["roles"] = [BUILT_IN_ROLES[i % len(BUILT_IN_ROLES)] for i in range(len(roles))]
    if key(case) in {("GET", "/api/users"), ("GET", "/api/clients")} and case.query:
        case.query.pop("cursor", None)
    if key(case) in CLIENT_BODIES and isinstance(case.body, dict):
        case.body.pop("territory", None)
    if key(case) == ("POST", "/oauth/token"):
        client = oauth_client()
        case.body = {
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
    if key(case) in {("POST", "/oauth/introspect"), ("POST", "/oauth/revoke")} and isinstance(case.body, dict):
        client = oauth_client()
        case.body["client_id"] = client["client_id"]
        case.body["client_secret"] = client["client_secret"]
    return case


@schemathesis.hook
def filter_case(context, case):
    if not is_positive(case) or key(case) not in SIGNUPS or not isinstance(case.body, dict):
        return True
    password = str(case.body.get("password", "")).lower()
    names = [str(case.body.get("username", "")).lower(), str(case.body.get("email", "")).split("@")[0].lower()]
    return not any(len(name) >= 3 and name in password for name in names)
