"""Every endpoint refuses a missing, malformed, expired, foreign-key or unsigned
token with 401 JSON; the algorithm is the configured one, never the token's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.conftest import asgi_client
from tests.api.support import OTHER_SECRET, SECRET, make_settings, token
from web.auth import Verifier, issue_token
from web.config import Settings
from web.errors import ApiError

pytestmark = pytest.mark.anyio

ENDPOINTS = [
    ("GET", "/api/games/weekly-data", None),
    ("GET", "/api/games/weekly-data/hammer", None),
    ("GET", "/api/games/history", None),
    ("POST", "/api/games/play", {"gameType": "hammer"}),
    ("GET", "/api/lottery/current", None),
    ("GET", "/api/lottery/week/2026-01-05", None),
    ("GET", "/api/lottery/stats", None),
    ("POST", "/api/admin/lottery/draw", None),
]


def hs256(key: bytes, claims: dict) -> str:
    """Signed by hand: PyJWT itself refuses a PEM key as an HMAC secret."""
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(json.dumps(claims).encode())
    return (signing_input + b"." + b64(hmac.new(key, signing_input, hashlib.sha256).digest())).decode()


def unsigned(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600, "admin": True}, None, algorithm="none")


BAD_HEADERS = {
    "missing": {},
    "not_bearer": {"Authorization": f"Basic {token('alice')}"},
    "empty_bearer": {"Authorization": "Bearer "},
    "garbage": {"Authorization": "Bearer not.a.jwt"},
    "expired": {"Authorization": f"Bearer {token('alice', admin=True, ttl=-60)}"},
    "wrong_key": {"Authorization": f"Bearer {token('alice', admin=True, secret=OTHER_SECRET)}"},
    "alg_none": {"Authorization": f"Bearer {unsigned('alice')}"},
    "no_exp": {"Authorization": "Bearer " + jwt.encode({"sub": "alice", "admin": True}, SECRET, algorithm="HS256")},
    "no_sub": {"Authorization": "Bearer " + jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")},
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
async def test_bad_tokens_are_401(readonly_client, method, path, body, case):
    response = await readonly_client.request(method, path, json=body, headers=BAD_HEADERS[case])
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized" and response.json()["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_good_token_passes(readonly_client):
    response = await readonly_client.get("/api/lottery/stats", headers={"Authorization": f"Bearer {token('alice')}"})
    assert response.status_code == 200 and response.json()["totalWeeksParticipated"] == 0


async def test_open_endpoints_need_no_token(readonly_client):
    assert (await readonly_client.get("/healthz")).json()["status"] == "ok"
    assert (await readonly_client.get("/openapi.json")).status_code == 200


async def test_asymmetric_keys_pin_the_algorithm(readonly_db_url):
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    signer = Settings(jwt_algorithm="ES256", jwt_private_key=private_pem)
    settings = make_settings(readonly_db_url, jwt_algorithm="ES256", jwt_secret=None, jwt_public_key=public_pem)
    async with asgi_client(settings) as client:
        good = issue_token("alice", settings=signer)
        assert (await client.get("/api/lottery/stats", headers={"Authorization": f"Bearer {good}"})).status_code == 200
        # The classic confusion: an HS256 token keyed with the (public) verification key.
        confused = hs256(public_pem.encode(), {"sub": "alice", "exp": int(time.time()) + 60})
        for bad in (confused, token("alice"), unsigned("alice")):
            response = await client.get("/api/lottery/stats", headers={"Authorization": f"Bearer {bad}"})
            assert response.status_code == 401


def test_a_remembered_token_still_expires(monkeypatch):
    """Verified tokens are cached; every hit re-checks exp against the clock."""
    verifier = Verifier(Settings(jwt_secret=SECRET))
    good = token("alice", ttl=60)
    assert verifier.verify(good).id == "alice"
    assert verifier.verify(good).id == "alice"  # the cached answer
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ApiError) as refused:
        verifier.verify(good)
    assert refused.value.status == 401 and refused.value.message == "token expired"


def test_env_configuration(tmp_path, monkeypatch):
    key = tmp_path / "public.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x/y", "JWT_ALGORITHM": "RS256",
                                  "JWT_PUBLIC_KEY": str(key), "CORS_ORIGINS": "https://a.example, https://b.example"})
    assert settings.jwt_public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.read_url == "postgresql://x/y"
    settings.check()
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        Settings(database_url="postgresql://x/y").check()
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        Settings(jwt_secret="s").check()
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_ALGORITHM", raising=False)
    claims = jwt.decode(issue_token("bob", admin=True, ttl_seconds=60), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob" and claims["admin"] is True and claims["exp"] - claims["iat"] == 60
