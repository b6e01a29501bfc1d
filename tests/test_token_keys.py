"""The token-keys plugin (k8s/container/token-keys): TorchServe's token check with keys from a
mounted Secret, on a real TorchServe with token authorization on.

It relies on private fields of the pinned TorchServe 0.12.0; these tests are what notices an
upgrade that moves them.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest
import requests

from serve import ROOT, LocalServer

pytestmark = pytest.mark.server

PLUGIN_SOURCE = ROOT / "k8s" / "container" / "token-keys"


def model_server_jar() -> str:
    import ts
    from pathlib import Path
    return str(Path(ts.__file__).parent / "frontend" / "model-server.jar")


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins")
    subprocess.run([str(PLUGIN_SOURCE / "build.sh"), model_server_jar(), str(folder / "pd-token-keys.jar")],
                   check=True)
    return folder


def write_keys(folder, **keys):
    folder.mkdir(exist_ok=True)
    for name, value in keys.items():
        (folder / name).write_text(value + "\n")


def new_key() -> str:
    return secrets.token_urlsafe(24)


def status(url, key, method="GET"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, url, headers=headers, timeout=10).status_code


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def keyed_server(plugin_dir, tmp_path_factory):
    keys_dir = tmp_path_factory.mktemp("secret") / "token-keys"
    keys = {"inference": new_key(), "management": new_key(), "api": new_key()}
    write_keys(keys_dir, **keys)
    server = LocalServer(extra_config={"disable_token_authorization": "false",
                                       "plugins_path": str(plugin_dir)},
                         environment={"TS_TOKEN_KEYS_DIR": str(keys_dir), "TS_TOKEN_KEYS_RELOAD_S": "1"},
                         management_key=keys["management"])
    with server:
        yield server, keys_dir, keys


def test_keys_from_the_secret_are_the_ones_torchserve_checks(keyed_server):
    server, _, keys = keyed_server
    assert status(f"{server.inference_url}/ping", keys["inference"]) == 200
    assert status(f"{server.management_url}/models", keys["management"]) == 200
    assert status(f"{server.inference_url}/ping", None) in (400, 401)
    assert status(f"{server.inference_url}/ping", new_key()) in (400, 401)
    assert status(f"{server.inference_url}/ping", keys["management"]) in (400, 401)
    answer = requests.post(server.predict_url, json={"signal": [0.0] * 5000},
                           headers={"Authorization": f"Bearer {keys['inference']}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["signals"][0]["regions"] == []
    # key_file.json, which the probes read, holds the keys in force, without expiry
    written = json.loads((server.runtime_dir / "key_file.json").read_text())
    assert written["inference"]["key"] == keys["inference"]
    assert written["management"]["key"] == keys["management"]
    assert written["API"]["key"] == keys["api"]
    assert written["inference"]["expiration time"].startswith("9999-")


def test_rotated_secret_takes_effect_and_beats_the_token_api(keyed_server):
    server, keys_dir, keys = keyed_server
    rotated = dict(keys, inference=new_key())
    write_keys(keys_dir, **rotated)
    assert wait_for(lambda: status(f"{server.inference_url}/ping", rotated["inference"]) == 200)
    assert status(f"{server.inference_url}/ping", keys["inference"]) in (400, 401)
    # POST /token would give this pod a random key of its own; the Secret's comes back.
    answer = requests.post(f"{server.management_url}/token?type=inference",
                           headers={"Authorization": f"Bearer {keys['api']}"}, timeout=10)
    assert answer.status_code == 200
    assert wait_for(lambda: status(f"{server.inference_url}/ping", rotated["inference"]) == 200)
    keys.update(rotated)


def test_a_bad_secret_stops_the_server_before_it_serves(plugin_dir, tmp_path):
    keys_dir = tmp_path / "token-keys"
    write_keys(keys_dir, inference="short", management=new_key())
    server = LocalServer(extra_config={"disable_token_authorization": "false",
                                       "plugins_path": str(plugin_dir)},
                         environment={"TS_TOKEN_KEYS_DIR": str(keys_dir)})
    server.start()
    try:
        # TorchServe's launcher exits 0 whatever the JVM did; what counts: it ended, and why
        server.process.wait(timeout=120)
        assert wait_for(lambda: not server._group_alive(), timeout=30), "a process of the server lives on"
        assert "could not be applied" in server.log_tail()
        assert "16 to 512 characters" in server.log_tail()
    finally:
        server.stop()
