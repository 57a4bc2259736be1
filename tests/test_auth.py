"""Client keys and JWTs: who may ask, and every way a credential is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.auth import digest
from tests.conftest import HubServer, make_settings, write_yaml

PORTAL_KEY = "ah_portal-secret-key-0123456789"
ADMIN_KEY = "ah_admin-secret-key-0123456789"
OPS_KEY = "ah_ops-secret-key-0123456789"


def rsa_pair() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


OLD_KEY, OLD_PUBLIC = rsa_pair()
NEW_KEY, NEW_PUBLIC = rsa_pair()


def token(private: object = NEW_KEY, kid: str = "2026-11", **overrides: object) -> str:
    now = int(time.time())
    claims = {"iss": "https://sso.lumen.example", "aud": "ask-hub", "sub": "emp-1042", "exp": now + 300,
              "iat": now, "scope": "ask chat", "tenant": "hr"}  # fmt: skip
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[HubServer]:
    tmp_path = tmp_path_factory.mktemp("secured")
    config = {
        "clients": [
            {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(OPS_KEY)]},
        ],
        "jwt": {
            "issuer": "https://sso.lumen.example",
            "audience": "ask-hub",
            "leeway_sec": 5,
            "keys": [
                {"kid": "2026-05", "algorithm": "RS256", "public_key": OLD_PUBLIC},
                {"kid": "2026-11", "algorithm": "RS256", "public_key": NEW_PUBLIC},
            ],
        },
    }
    path = write_yaml(tmp_path / "hub.yaml", config)
    settings = make_settings(
        tmp_path,
        INDEX_DIR=str(sample_index),
        HUB_CONFIG=str(path),
        HUB_API_KEYS=f"portal:hr:{PORTAL_KEY},admin:it:{ADMIN_KEY}",
    )
    with HubServer(settings) as server:
        yield server


def ask(hub: HubServer, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{hub.url}/ask", json={"question": "VPN 怎麼設定"}, headers=headers or {}, timeout=10)


def test_bootstrap_key_works_as_bearer_and_x_api_key(secured: HubServer) -> None:
    assert ask(secured, {"Authorization": f"Bearer {PORTAL_KEY}"}).status_code == 200
    assert ask(secured, {"X-API-Key": PORTAL_KEY}).status_code == 200


def test_yaml_key_stored_as_hash_works(secured: HubServer) -> None:
    assert ask(secured, {"Authorization": f"Bearer {OPS_KEY}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {PORTAL_KEY}"},
     {"X-API-Key": PORTAL_KEY[:-1]}],
)  # fmt: skip
def test_missing_or_bad_keys_are_401(secured: HubServer, headers: dict[str, str]) -> None:
    response = ask(secured, headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


def test_open_routes_need_no_key(secured: HubServer) -> None:
    assert httpx.get(f"{secured.url}/healthz").status_code == 200
    assert httpx.get(f"{secured.url}/metrics").status_code == 200
    assert httpx.get(f"{secured.url}/readyz").status_code == 200
    assert httpx.get(f"{secured.url}/").status_code == 200


def test_valid_jwts_from_both_rotation_keys(secured: HubServer) -> None:
    for private, kid in ((OLD_KEY, "2026-05"), (NEW_KEY, "2026-11")):
        response = ask(secured, {"Authorization": f"Bearer {token(private, kid)}"})
        assert response.status_code == 200, response.text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(alg: str) -> str:
    """A token's header and claims, valid but for the algorithm, encoded by hand (PyJWT refuses to)."""
    claims = {"iss": "https://sso.lumen.example", "aud": "ask-hub", "sub": "x", "exp": int(time.time()) + 60,
              "scope": "ask"}  # fmt: skip
    header = {"alg": alg, "typ": "JWT", "kid": "2026-11"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _none_token() -> str:
    return _hand_made("none") + "."


def _confused_token() -> str:
    """HS256 'signed' with the RSA public key as the HMAC secret: algorithm confusion."""
    signing_input = _hand_made("HS256")
    sig = hmac.new(NEW_PUBLIC.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 60), "expired"),
        (lambda: token(nbf=int(time.time()) + 120), "not valid yet"),
        (lambda: token(iss="https://evil.example"), "invalid token"),
        (lambda: token(aud="another-app"), "invalid token"),
        (lambda: token(sub=None), "invalid token"),
        (lambda: token(kid="unknown"), "unknown signing key"),
        (lambda: token(NEW_KEY, "2026-05"), "invalid token"),  # signed by the other key
        (_none_token, "algorithm"),
        (_confused_token, "algorithm"),
        (lambda: token()[:-4] + "AAAA", "invalid token"),
        (lambda: "eyJhbGciOi.not-a-jwt.x", "malformed"),
        (lambda: token(scope=["ask", ["chat"]]), "scope"),  # validly signed, a claim of the wrong shape
        (lambda: token(scope=[{"ask": True}]), "scope"),
    ],
)
def test_bad_jwts_are_401(secured: HubServer, make: object, reason: str) -> None:
    response = ask(secured, {"Authorization": f"Bearer {make()}"})  # type: ignore[operator]
    assert response.status_code == 401
    assert reason in response.json()["error"]["message"]


def test_small_clock_skew_is_tolerated(secured: HubServer) -> None:
    response = ask(secured, {"Authorization": f"Bearer {token(exp=int(time.time()) - 2)}"})
    assert response.status_code == 200


def test_scope_is_enforced(secured: HubServer) -> None:
    response = ask(secured, {"Authorization": f"Bearer {token(scope='chat')}"})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"
    usage = httpx.get(f"{secured.url}/admin/usage", headers={"Authorization": f"Bearer {token(scope='chat')}"})
    assert usage.status_code == 403


def test_keys_never_reach_the_logs(secured: HubServer) -> None:
    ask(secured, {"Authorization": f"Bearer {PORTAL_KEY}"})
    ask(secured, {"Authorization": "Bearer ah_wrong-but-secret-looking"})
    bearer = token()
    ask(secured, {"Authorization": f"Bearer {bearer}"})
    secured.run(_flush_logs())
    log = Path(str(secured.settings.log_file)).read_text(encoding="utf-8")
    assert '"event":"auth_failed"' in log
    for secret in (PORTAL_KEY, "ah_wrong-but-secret-looking", bearer, digest(PORTAL_KEY), "emp-1042"):
        assert secret not in log


async def _flush_logs() -> None:
    from core import logs

    logs.flush()


def test_keys_create_command_prints_a_working_entry(tmp_path: Path, sample_index: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "core", "keys", "create", "--client", "svc", "--tenant", "cs", "--scopes", "ask"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("ah_"))
    entry = yaml.safe_load(out[out.index("clients:") :])
    path = write_yaml(tmp_path / "hub.yaml", entry)
    assert key not in path.read_text()
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(path))
    with HubServer(settings) as hub:
        assert ask(hub, {"Authorization": f"Bearer {key}"}).status_code == 200
        assert ask(hub, {"Authorization": "Bearer ah_other"}).status_code == 401
