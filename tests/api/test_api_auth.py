"""Every endpoint refuses a missing, malformed, expired, foreign-key or unsigned
token, a refresh token, or one without a valid user claim, with 401 JSON; the
algorithm is the configured one, never the token's; the platform's own access
tokens pass with its settings (JWT_USER_CLAIM, JWT_ISSUER)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.routing import Route

from tests.api.conftest import asgi_client
from core.rules import USER_ID_MAX_LENGTH
from core.tokens import TokenSettings
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


def signed(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    """An Authorization header with a token of exactly these claims, `exp` an hour ahead."""
    return {"Authorization": "Bearer " + jwt.encode({"exp": int(time.time()) + 3600, **claims}, key,
                                                    algorithm=algorithm)}


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
    # Well signed, but no valid user: 401 before any SQL sees it (not SQL's 400 LTU01).
    "empty_sub": signed({"sub": "", "admin": True}),
    "sub_over_128": signed({"sub": "x" * (USER_ID_MAX_LENGTH + 1), "admin": True}),
    "nul_in_sub": signed({"sub": "al\x00ice", "admin": True}),
    "refresh_token": signed({"sub": "alice", "admin": True, "type": "refresh"}),
    "other_claim_only": signed({"address": "alice", "admin": True}),
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
    body = response.json()
    assert body["code"] == "unauthorized" and body["message"] and body["detail"] == body["message"]
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


async def test_the_longest_user_id_is_the_one_sql_accepts(readonly_client, readonly_db_url):
    longest = "x" * USER_ID_MAX_LENGTH
    response = await readonly_client.get("/api/lottery/stats", headers=signed({"sub": longest}))
    assert response.status_code == 200
    with psycopg.connect(readonly_db_url) as conn:  # the same bound as check_user_id (LTU01)
        assert conn.execute("SELECT check_user_id(%s)", (longest,)).fetchone()[0] == longest
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT check_user_id(%s)", (longest + "x",))
        assert refused.value.sqlstate == "LTU01"


def rsa_keys() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
            private.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def platform_claims(btc_address: str, **changes) -> dict:
    """What the platform's create_access_token signs (sub is its numeric user id); a change to None drops a claim."""
    now = int(time.time())
    claims = {"sub": "42", "address": btc_address, "auth_method": "wallet", "iat": now, "exp": now + 3600,
              "iss": "thebitcoingame.com", "type": "access", **changes}
    return {k: v for k, v in claims.items() if v is not None}


async def test_platform_access_tokens_with_the_platforms_settings(fresh_db_url, shares):
    private_pem, public_pem = rsa_keys()
    address = "bc1qplatformminer0000000000000000000000"
    shares.add(address, 500.0)
    settings = make_settings(fresh_db_url, jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=public_pem,
                             jwt_user_claim="address", jwt_issuer="thebitcoingame.com")

    def bearer(claims: dict) -> dict[str, str]:
        return {"Authorization": "Bearer " + jwt.encode(claims, private_pem, algorithm="RS256")}

    async with asgi_client(settings) as client:
        ok = await client.get("/api/games/weekly-data", headers=bearer(platform_claims(address)))
        assert ok.status_code == 200 and ok.json()["totalShares"] == 1 and ok.json()["bestDifficulty"] == 500
        refused = {
            "refresh": platform_claims(address, type="refresh", jti="r1"),
            "wrong_issuer": platform_claims(address, iss="elsewhere.example"),
            "no_issuer": platform_claims(address, iss=None),
            "no_address": platform_claims(address, address=None),
            "empty_address": platform_claims(address, address=""),
            "address_not_a_string": platform_claims(address, address=42),
        }
        for case, claims in refused.items():
            response = await client.get("/api/games/weekly-data", headers=bearer(claims))
            assert response.status_code == 401, case
        # A token without `type` is an access token (this project's own, before the claim existed).
        untyped = await client.get("/api/games/weekly-data", headers=bearer(platform_claims(address, type=None)))
        assert untyped.status_code == 200


async def test_the_audience_is_checked_when_set(readonly_db_url):
    async with asgi_client(make_settings(readonly_db_url, jwt_audience="lottery")) as client:
        for audience, status in (("lottery", 200), (["x", "lottery"], 200), ("other", 401), (None, 401)):
            claims = {"sub": "alice"} if audience is None else {"sub": "alice", "aud": audience}
            response = await client.get("/api/lottery/stats", headers=signed(claims))
            assert response.status_code == status, claims
    async with asgi_client(make_settings(readonly_db_url)) as client:  # no audience configured
        response = await client.get("/api/lottery/stats", headers=signed({"sub": "alice", "aud": "lottery"}))
        assert response.status_code == 401


def test_issued_tokens_have_the_configured_shape():
    env = {"JWT_SECRET": SECRET, "JWT_USER_CLAIM": "address", "JWT_ISSUER": "thebitcoingame.com",
           "JWT_AUDIENCE": "lottery"}
    tokens = TokenSettings.from_env(env)
    issued = issue_token("bc1qme", ttl_seconds=60, settings=Settings.from_env(env))
    claims = jwt.decode(issued, SECRET, algorithms=["HS256"], audience="lottery")
    assert claims["address"] == "bc1qme" and "sub" not in claims
    assert (claims["iss"], claims["aud"], claims["type"]) == ("thebitcoingame.com", "lottery", "access")
    assert (tokens.user_claim, tokens.issuer, tokens.audience) == ("address", "thebitcoingame.com", "lottery")
    assert Verifier(Settings.from_env(env)).verify(issued).id == "bc1qme"
    # The same token means nothing to a verifier configured for another claim or issuer.
    for other in ({"JWT_USER_CLAIM": "sub"}, {"JWT_ISSUER": "elsewhere.example"}):
        with pytest.raises(ApiError) as refused:
            Verifier(Settings.from_env({**env, **other})).verify(issued)
        assert refused.value.status == 401


def test_the_cache_never_remembers_a_refusal():
    verifier = Verifier(Settings(jwt_secret=SECRET))
    refresh = signed({"sub": "alice", "type": "refresh"})["Authorization"].split()[1]
    for _ in range(2):
        with pytest.raises(ApiError) as refused:
            verifier.verify(refresh)
        assert refused.value.message == "invalid token: not an access token"
    assert verifier.verify(token("alice")).id == "alice"
