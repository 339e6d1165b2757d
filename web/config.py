"""Settings of the web layer, read from the environment once per app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from core.tokens import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, TokenSettings


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return float(env[name]) if env.get(name) else default


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(env[name]) if env.get(name) else default


def _metrics_listen(value: str) -> str | None:
    """METRICS_LISTEN: empty or "app" (the API's own port), "off", or "[host:]port"."""
    value = value.strip()
    if value.lower() in ("", "app", "on"):
        return "app"
    if value.lower() in ("off", "none", "0", "false"):
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise RuntimeError(f"METRICS_LISTEN must be app, off or [host:]port, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    database_read_url: str | None = None      # GET endpoints only; default: database_url
    database_role: str | None = "lottery_web"  # SET ROLE on every connection: API functions only
    jwt_algorithm: str = "HS256"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None        # only to issue tokens (make token)
    jwt_user_claim: str = "sub"               # the claim naming the mining user (platform: address)
    jwt_issuer: str | None = None             # checked when set (platform: thebitcoingame.com)
    jwt_audience: str | None = None           # checked when set
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 5.0                 # wait for a connection, then 503
    connect_timeout: int = 3
    db_probe_seconds: float = 0.25            # while the database is unreachable: a connection attempt this often
    statement_timeout_ms: int = 10_000        # requests only; the admin draw has none
    ws_heartbeat_seconds: float = 20.0
    ws_queue_size: int = 256                  # per client backlog
    ws_stall_seconds: float = 2.0             # a full backlog that stays full this long drops its client
    relay_probe_seconds: float = 15.0         # LISTEN connection liveness probe
    relay_max_backoff: float = 1.0            # the relay is back within this of the database
    # Operations (web/metrics.py, web/logs.py, web/server.py)
    metrics_listen: str | None = "app"        # "app": /metrics on the API's port; "[host:]port": its own; None: off
    metrics_cache_seconds: float = 5.0        # lottery_operations() is read at most this often
    log_format: str = "plain"                 # plain | json
    log_level: str = "info"
    header_timeout: float = 10.0              # a request's headers must arrive within this (else 408, closed)
    body_timeout: float = 30.0                # and its body within this after its headers (else 408, closed)
    max_url_bytes: int = 8192                 # a longer request target is refused with 414
    max_header_bytes: int = 32768             # larger request headers are refused with 431

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        origins = tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
        tokens = TokenSettings.from_env(env)
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            database_read_url=env.get("DATABASE_READ_URL") or None,
            database_role=env.get("DATABASE_ROLE", "lottery_web") or None,
            jwt_algorithm=tokens.algorithm,
            jwt_secret=tokens.secret,
            jwt_public_key=tokens.public_key,
            jwt_private_key=tokens.private_key,
            jwt_user_claim=tokens.user_claim,
            jwt_issuer=tokens.issuer,
            jwt_audience=tokens.audience,
            cors_origins=origins,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 16 * 1024),
            pool_max_size=_int(env, "DB_POOL_MAX_SIZE", 10),
            pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0),
            statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 10_000),
            ws_heartbeat_seconds=_float(env, "WS_HEARTBEAT_SECONDS", 20.0),
            ws_queue_size=_int(env, "WS_QUEUE_SIZE", 256),
            ws_stall_seconds=_float(env, "WS_STALL_SECONDS", 2.0),
            db_probe_seconds=_float(env, "DB_PROBE_SECONDS", 0.25),
            metrics_listen=_metrics_listen(env.get("METRICS_LISTEN", "")),
            metrics_cache_seconds=_float(env, "METRICS_CACHE_SECONDS", 5.0),
            log_format=(env.get("LOG_FORMAT") or "plain").lower(),
            log_level=(env.get("LOG_LEVEL") or "info").lower(),
            header_timeout=_float(env, "HTTP_HEADER_TIMEOUT", 10.0),
            body_timeout=_float(env, "HTTP_BODY_TIMEOUT", 30.0),
            max_url_bytes=_int(env, "HTTP_MAX_URL_BYTES", 8192),
            max_header_bytes=_int(env, "HTTP_MAX_HEADER_BYTES", 32768),
        )

    def check(self) -> None:
        """Refuse to start half-configured (called in lifespan, not at import)."""
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (a postgresql:// URL)")
        alg = self.jwt_algorithm
        if alg in HMAC_ALGORITHMS:
            if not self.jwt_secret:
                raise RuntimeError(f"JWT_SECRET is required with JWT_ALGORITHM={alg}")
        elif alg in ASYMMETRIC_ALGORITHMS:
            if not self.jwt_public_key:
                raise RuntimeError(f"JWT_PUBLIC_KEY is required with JWT_ALGORITHM={alg}")
        else:
            raise RuntimeError(f"unsupported JWT_ALGORITHM {alg!r}")
        if self.log_format not in ("plain", "json"):
            raise RuntimeError(f"LOG_FORMAT must be plain or json, got {self.log_format!r}")

    @property
    def tokens(self) -> TokenSettings:
        return TokenSettings(self.jwt_algorithm, self.jwt_secret, self.jwt_public_key, self.jwt_private_key,
                             self.jwt_user_claim, self.jwt_issuer, self.jwt_audience)

    @property
    def read_url(self) -> str | None:
        return self.database_read_url or self.database_url
