"""Reading and writing registry logins in docker's config.json, helpers included.

A fake `docker-credential-test` program on PATH stands in for a real credential helper; it
keeps its secrets in a JSON file and speaks the helper protocol (get/store/erase on stdin).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from core.errors import AuthRequired, InvalidArgument
from core.store.credentials import (
    DOCKER_HUB_AUTH_KEY,
    Credentials,
    auth_key,
    login,
    logout,
    lookup,
    registry_host,
)

FAKE_HELPER = """#!{python}
import json, os, sys
db_path = os.environ["FAKE_HELPER_DB"]
db = json.load(open(db_path)) if os.path.exists(db_path) else {{}}
action = sys.argv[1]
payload = sys.stdin.read()
if action == "get":
    server = payload.strip()
    if server not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, **db[server]}}))
elif action == "store":
    entry = json.loads(payload)
    db[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
    json.dump(db, open(db_path, "w"))
elif action == "erase":
    if db.pop(payload.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    json.dump(db, open(db_path, "w"))
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DOCKER_CONFIG pointed at an empty directory; returns the config.json path."""
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory / "config.json"


@pytest.fixture
def helper_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docker-credential-test on PATH; returns the JSON file it keeps secrets in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-test"
    program.write_text(FAKE_HELPER.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    db = tmp_path / "helper-db.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELPER_DB", str(db))
    return db


def encoded(user: str, password: str) -> str:
    """The base64 `user:password` docker keeps in auths."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auths_entry_is_decoded_from_base64(config: Path) -> None:
    config.write_text(json.dumps({"auths": {"reg.example:5000": {"auth": encoded("u", "p:w")}}}))
    assert lookup("reg.example:5000") == Credentials("u", "p:w")


def test_docker_hub_login_is_found_under_its_legacy_key(config: Path) -> None:
    config.write_text(json.dumps({"auths": {DOCKER_HUB_AUTH_KEY: {"auth": encoded("hub", "x")}}}))
    assert lookup("docker.io") == Credentials("hub", "x")


def test_auths_key_with_scheme_and_path_matches_the_host(config: Path) -> None:
    config.write_text(
        json.dumps({"auths": {"https://reg.example/v2/": {"auth": encoded("a", "b")}}})
    )
    assert lookup("reg.example") == Credentials("a", "b")


def test_identity_token_is_returned(config: Path) -> None:
    config.write_text(json.dumps({"auths": {"reg.example": {"identitytoken": "refresh-me"}}}))
    found = lookup("reg.example")
    assert found is not None and found.identity_token == "refresh-me"


def test_no_entry_means_no_credentials(config: Path) -> None:
    config.write_text(json.dumps({"auths": {"other.example": {"auth": encoded("a", "b")}}}))
    assert lookup("reg.example") is None


def test_missing_config_means_no_credentials(config: Path) -> None:
    assert lookup("reg.example") is None


def test_broken_config_names_the_file(config: Path) -> None:
    config.write_text("{not json")
    with pytest.raises(InvalidArgument, match=str(config)):
        lookup("reg.example")


def test_auth_that_is_not_user_colon_password_is_refused(config: Path) -> None:
    config.write_text(json.dumps({"auths": {"reg.example": {"auth": encoded("nocolon", "")[:-4]}}}))
    with pytest.raises(InvalidArgument, match="docker login reg.example"):
        lookup("reg.example")


def test_cred_helper_for_the_host_is_asked(config: Path, helper_db: Path) -> None:
    helper_db.write_text(json.dumps({"reg.example": {"Username": "h", "Secret": "s"}}))
    config.write_text(json.dumps({"credHelpers": {"reg.example": "test"}}))
    assert lookup("reg.example") == Credentials("h", "s")


def test_creds_store_is_the_default_helper(config: Path, helper_db: Path) -> None:
    helper_db.write_text(json.dumps({DOCKER_HUB_AUTH_KEY: {"Username": "hub", "Secret": "s"}}))
    config.write_text(json.dumps({"credsStore": "test"}))
    assert lookup("docker.io") == Credentials("hub", "s")


def test_helper_without_an_entry_falls_back_to_auths(config: Path, helper_db: Path) -> None:
    config.write_text(
        json.dumps(
            {"credsStore": "test", "auths": {"reg.example": {"auth": encoded("plain", "p")}}}
        )
    )
    assert lookup("reg.example") == Credentials("plain", "p")


def test_helper_token_user_means_an_identity_token(config: Path, helper_db: Path) -> None:
    helper_db.write_text(json.dumps({"reg.example": {"Username": "<token>", "Secret": "tok"}}))
    config.write_text(json.dumps({"credsStore": "test"}))
    found = lookup("reg.example")
    assert found is not None and found.identity_token == "tok"


def test_missing_helper_program_is_named(config: Path) -> None:
    config.write_text(json.dumps({"credHelpers": {"reg.example": "absent-helper"}}))
    with pytest.raises(AuthRequired, match="docker-credential-absent-helper"):
        lookup("reg.example")


def test_login_writes_base64_auth_readable_only_by_the_owner(config: Path) -> None:
    login("reg.example", "me", "pw", verify=False)
    document = json.loads(config.read_text())
    assert document["auths"]["reg.example"] == {"auth": encoded("me", "pw")}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_login_keeps_the_rest_of_the_config(config: Path) -> None:
    config.write_text(json.dumps({"psFormat": "table {{.ID}}", "auths": {}}))
    login("reg.example", "me", "pw", verify=False)
    assert json.loads(config.read_text())["psFormat"] == "table {{.ID}}"


def test_login_to_docker_hub_uses_the_legacy_key(config: Path) -> None:
    login("docker.io", "me", "pw", verify=False)
    assert DOCKER_HUB_AUTH_KEY in json.loads(config.read_text())["auths"]
    assert auth_key("docker.io") == DOCKER_HUB_AUTH_KEY


def test_login_with_a_creds_store_saves_the_secret_in_the_helper(
    config: Path, helper_db: Path
) -> None:
    config.write_text(json.dumps({"credsStore": "test"}))
    login("reg.example", "me", "pw", verify=False)
    assert json.loads(helper_db.read_text())["reg.example"] == {"Username": "me", "Secret": "pw"}
    assert json.loads(config.read_text())["auths"]["reg.example"] == {}


def test_logout_removes_the_auths_entry(config: Path) -> None:
    login("reg.example", "me", "pw", verify=False)
    assert logout("reg.example")
    assert lookup("reg.example") is None


def test_logout_erases_from_the_helper(config: Path, helper_db: Path) -> None:
    config.write_text(json.dumps({"credsStore": "test"}))
    login("reg.example", "me", "pw", verify=False)
    assert logout("reg.example")
    assert json.loads(helper_db.read_text()) == {}


def test_logout_without_a_login_reports_nothing_removed(config: Path) -> None:
    assert not logout("reg.example")


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("user", "hunter2"))


def test_registry_host_reads_a_server_the_way_docker_login_does() -> None:
    assert registry_host(None) == "docker.io"
    assert registry_host("https://reg.example:5000/v2/") == "reg.example:5000"
    assert registry_host("index.docker.io") == "docker.io"


def test_registry_host_refuses_a_name_with_spaces() -> None:
    with pytest.raises(InvalidArgument, match="does not name a registry"):
        registry_host("reg example")
