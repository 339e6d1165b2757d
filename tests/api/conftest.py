"""Web fixtures: the app on this test's own database (`fresh_db_url`), driven
by httpx over ASGI (lifespan included), or served by a real uvicorn."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.api.support import Shares, make_settings, serve
from web.app import create_app
from web.config import Settings


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture
def settings(fresh_db_url) -> Settings:
    return make_settings(fresh_db_url)


@contextlib.asynccontextmanager
async def asgi_client(settings: Settings):
    """httpx.AsyncClient on the ASGI app, with the app's lifespan (pool, relay) running and
    its state handed to each request, as a server does."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as lifespan:
        transport = httpx.ASGITransport(app=lifespan.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def client(settings):
    async with asgi_client(settings) as http:
        yield http


@pytest.fixture(scope="session")
def readonly_db_url(shared_clone):
    """One clone for tests that never write (auth failures, bad input rejected before SQL)."""
    with shared_clone("lottery_api_readonly", "readonly_db_url") as url:
        yield url


@pytest.fixture(scope="module")
async def readonly_client(readonly_db_url):
    async with asgi_client(make_settings(readonly_db_url)) as http:
        yield http


@pytest.fixture
def shares(fresh_db) -> Shares:
    return Shares(fresh_db)


@pytest.fixture
def live_server(settings):
    """host:port of a real uvicorn serving the app."""
    with serve(create_app(settings)) as address:
        yield address
