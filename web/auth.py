"""Bearer JWT: verification for requests and sockets, and the one place where a
route's declared access (PUBLIC, USER, ADMIN) is enforced."""

from __future__ import annotations

import enum
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from core import tokens
from core.rules import USER_ID_MAX_LENGTH
from web.config import Settings
from web.errors import ApiError


@dataclass(frozen=True)
class User:
    id: str
    admin: bool = False
    expires_at: float = 0.0


class Access(enum.Enum):
    """What a route needs, declared once (web.openapi.operation): it decides both the
    OpenAPI `security` of the operation and what `guard` checks before the handler runs."""
    PUBLIC = "public"  # no token; the handler takes the request alone
    USER = "user"      # a valid token; the handler takes (request, user)
    ADMIN = "admin"    # a valid token with `admin: true`; the handler takes (request, user)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message,
                    hint="Send Authorization: Bearer <JWT> (WebSocket: ?token=<JWT>).",
                    headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Verifier:
    """Checks tokens against ONE configured algorithm and key: a token's own
    `alg` header (e.g. none, or HS256 signed with a public key) is never trusted.
    Also required: `exp`, the user claim (JWT_USER_CLAIM), `iss`/`aud` when
    configured; a `type` claim, when present, must be `access` (the platform signs
    refresh tokens with the same key).

    Tokens that passed are remembered (LRU, by their exact text): decoding costs
    50-90 us of pure Python per request, a dict hit ~1 us. The settings are fixed
    for the verifier's life and of the claims only `exp` can turn a good token bad
    later (`nbf`/`iat` only turn bad ones good), so a hit re-checks `exp` alone.
    Failures are never cached."""

    CACHE_SIZE = 4096

    def __init__(self, settings: Settings):
        self.settings = settings.tokens
        self.key = self.settings.verifying_key
        configured = {"iss": self.settings.issuer, "aud": self.settings.audience}
        self.options = {"require": ["exp", self.settings.user_claim, *(c for c, v in configured.items() if v)]}
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
        settings = self.settings
        try:
            claims = jwt.decode(token, self.key, algorithms=[settings.algorithm], options=self.options,
                                issuer=settings.issuer, audience=settings.audience)
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        if claims.get("type", tokens.ACCESS_TYPE) != tokens.ACCESS_TYPE:
            raise _unauthorized("invalid token: not an access token")
        user_id = claims[settings.user_claim]
        if not _valid_user_id(user_id):
            raise _unauthorized(f"invalid token: {settings.user_claim} must be a string of "
                                f"1 to {USER_ID_MAX_LENGTH} characters")
        return User(id=user_id, admin=claims.get("admin") is True, expires_at=float(claims["exp"]))

    def from_request(self, request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        return self.verify(token.strip())


def _valid_user_id(value) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= USER_ID_MAX_LENGTH or "\x00" in value:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate (a \ud800 escape) cannot be sent to PostgreSQL
    except UnicodeEncodeError:
        return False
    return True


def guard(handler, access: Access):
    """The endpoint Starlette calls for `handler`: the token is checked here, by the
    route's declaration, and never by the handler itself."""
    if access is Access.PUBLIC:
        return handler

    @functools.wraps(handler)
    async def endpoint(request):
        user = request.state.verifier.from_request(request)
        if access is Access.ADMIN and not user.admin:
            raise ApiError(403, "forbidden", "this endpoint needs a token with the admin claim")
        return await handler(request, user)
    return endpoint


def issue_token(user_id: str, admin: bool = False, ttl_seconds: int = 86400,
                *, settings: Settings | None = None) -> str:
    """core.tokens.issue_token with the web layer's Settings (tests sign with them)."""
    return tokens.issue_token(user_id, admin, ttl_seconds, settings=settings.tokens if settings else None)
