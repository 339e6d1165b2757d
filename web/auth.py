"""Bearer JWT: verification for requests and sockets."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from core import tokens

from web.config import HMAC_ALGORITHMS, Settings
from web.errors import ApiError


@dataclass(frozen=True)
class User:
    id: str
    admin: bool = False
    expires_at: float = 0.0


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message,
                    hint="Send Authorization: Bearer <JWT> (WebSocket: ?token=<JWT>).",
                    headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Verifier:
    """Checks tokens against ONE configured algorithm and key: a token's own
    `alg` header (e.g. none, or HS256 signed with a public key) is never trusted.

    Tokens that passed are remembered (LRU, by their exact text): decoding costs
    50-90 us of pure Python per request, a dict hit ~1 us. Of the checks only `exp`
    can turn a good token bad later (`nbf`/`iat` only turn bad ones good), so a
    hit re-checks `exp` alone. Failures are never cached."""

    CACHE_SIZE = 4096

    def __init__(self, settings: Settings):
        self.algorithm = settings.jwt_algorithm
        self.key = settings.jwt_secret if self.algorithm in HMAC_ALGORITHMS else settings.jwt_public_key
        self._verified: OrderedDict[str, User] = OrderedDict()

    def verify(self, token: str | None) -> User:
        if not token:
            raise _unauthorized("missing bearer token")
        user = self._verified.get(token)
        if user is not None:
            if int(user.expires_at) <= time.time():  # PyJWT's own rule: expired once now >= int(exp)
                del self._verified[token]
                raise _unauthorized("token expired")
            self._verified.move_to_end(token)
            return user
        user = self._decode(token)
        self._verified[token] = user
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return user

    def _decode(self, token: str) -> User:
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.algorithm],
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        sub = claims["sub"]
        # A lone surrogate (a \ud800 escape) cannot be sent to PostgreSQL.
        if not isinstance(sub, str) or not _encodable(sub):
            raise _unauthorized("invalid token: bad sub")
        return User(id=sub, admin=claims.get("admin") is True, expires_at=float(claims["exp"]))

    def from_request(self, request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        return self.verify(token.strip())


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def authenticate(request) -> User:
    return request.app.state.verifier.from_request(request)


def require_admin(request) -> User:
    user = authenticate(request)
    if not user.admin:
        raise ApiError(403, "forbidden", "this endpoint needs a token with the admin claim")
    return user


def issue_token(user_id: str, admin: bool = False, ttl_seconds: int = 86400,
                *, settings: Settings | None = None) -> str:
    """core.tokens.issue_token with the web layer's Settings (tests sign with them)."""
    return tokens.issue_token(user_id, admin, ttl_seconds, settings=settings.tokens if settings else None)
