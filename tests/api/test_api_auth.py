"""Every endpoint refuses a missing, malformed, expired, foreign-key or unsigned
token with 401 JSON; the algorithm is the configured one, never the token's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.routing import Route

from tests.api.conftest import asgi_client
from tests.api.support import OTHER_SECRET, SECRET, make_settings, token
from web.app import ROUTES
from web.auth import Verifier, issue_token
from web.config import Settings
from web.errors import ApiError
from web.openapi import build_document

pytestmark = pytest.mark.anyio

# The only HTTP routes a request without a token may reach.
OPEN_PATHS = {"/healthz", "/livez", "/openapi.json"}


def example(param: dict | None) -> str:
    """A value for a path parameter: its documented example or first enum member."""
    schema = (param or {}).get("schema", {})
    return str(schema.get("example", (schema.get("enum") or ["x"])[0]))


def http_operations() -> list[tuple[str, str, bool]]:
    """(method, concrete path, open) of every HTTP route of the app, read from its Route list;
    an operation of the OpenAPI document saying `security: []` is open, and so is a route left
    out of the document only when OPEN_PATHS names it: a new route is protected until shown open."""
    document = build_document(ROUTES, "test", "0")
    operations = []
    for route in ROUTES:
        if not isinstance(route, Route):
            continue  # the WebSocket: tests/api/test_api_ws.py refuses its bad tokens
        for method in sorted(route.methods - {"HEAD"}):
            op = document["paths"].get(route.path, {}).get(method.lower())
            params = {p["name"]: p for p in (op or {}).get("parameters", []) if p["in"] == "path"}
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: example(params.get(m[1])), route.path)
            is_open = op["security"] == [] if op else route.path in OPEN_PATHS
            operations.append((method, path, is_open))
    return operations


OPERATIONS = http_operations()
ENDPOINTS = [(method, path) for method, path, is_open in OPERATIONS if not is_open]


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


def test_every_route_but_the_open_ones_needs_a_token():
    assert {path for _, path, is_open in OPERATIONS if is_open} == OPEN_PATHS
    assert ("GET", "/api/lottery/week/2026-11-16/ranking") in ENDPOINTS
    assert len(ENDPOINTS) == len({(m, p) for m, p, _ in OPERATIONS}) - len(OPEN_PATHS) >= 9


@pytest.mark.parametrize("case", list(BAD_HEADERS))
@pytest.mark.parametrize("method,path", ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
async def test_bad_tokens_are_401(readonly_client, method, path, case):
    # No body: the token is refused before a body is read (a handler that read first would answer 400).
    response = await readonly_client.request(method, path, headers=BAD_HEADERS[case])
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
