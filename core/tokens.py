"""JWT settings and signing, shared by the web layer (which verifies tokens) and the
`lottery token` / `lottery welcome` commands (which sign them for local use)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import jwt

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})


def pem(value: str | None) -> str | None:
    """A PEM key given inline, or the path of a file holding it."""
    if not value:
        return None
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")  # one-line env values often carry literal \n
    return Path(value).read_text()


# The only `type` claim a token may carry, when it carries one: the platform signs
# its refresh tokens with the same key and tells them apart by `type`.
ACCESS_TYPE = "access"


@dataclass(frozen=True)
class TokenSettings:
    algorithm: str = "HS256"
    secret: str | None = None        # HMAC algorithms
    public_key: str | None = None    # asymmetric algorithms: verification
    private_key: str | None = None   # asymmetric algorithms: signing (local tokens only)
    user_claim: str = "sub"          # the claim holding the mining user (the platform's: `address`)
    issuer: str | None = None        # `iss` required and checked when set
    audience: str | None = None      # `aud` required and checked when set

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "TokenSettings":
        env = os.environ if env is None else env
        return cls(algorithm=env.get("JWT_ALGORITHM") or "HS256",
                   secret=env.get("JWT_SECRET") or None,
                   public_key=pem(env.get("JWT_PUBLIC_KEY")),
                   private_key=pem(env.get("JWT_PRIVATE_KEY")),
                   user_claim=env.get("JWT_USER_CLAIM") or "sub",
                   issuer=env.get("JWT_ISSUER") or None,
                   audience=env.get("JWT_AUDIENCE") or None)

    @property
    def is_hmac(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS

    @property
    def signing_key(self) -> str | None:
        return self.secret if self.is_hmac else self.private_key

    @property
    def verifying_key(self) -> str | None:
        return self.secret if self.is_hmac else self.public_key


def issue_token(user_id: str, admin: bool = False, ttl_seconds: int = 86400,
                *, settings: TokenSettings | None = None) -> str:
    """A signed access token for `user_id`, with JWT_SECRET (HMAC) or JWT_PRIVATE_KEY
    (RS*/ES*/PS*/EdDSA) and JWT_ALGORITHM from the environment unless `settings` is given.
    Shaped like the tokens the web layer accepts: the user in the claim named by
    JWT_USER_CLAIM, `iss`/`aud` when JWT_ISSUER/JWT_AUDIENCE are set, `type: access`."""
    settings = settings or TokenSettings.from_env()
    key = settings.signing_key
    if not key:
        raise RuntimeError("JWT_SECRET is not set" if settings.is_hmac
                           else f"JWT_PRIVATE_KEY is needed to sign {settings.algorithm} tokens")
    now = int(time.time())
    claims = {settings.user_claim: user_id, "iat": now, "exp": now + int(ttl_seconds), "type": ACCESS_TYPE}
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, key, algorithm=settings.algorithm)
