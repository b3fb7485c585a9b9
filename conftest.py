"""Shared fixtures: embedded services for the test session, users per role, API keys, a worker.

`TEST_CLICKHOUSE=emulator` runs the whole session against a ClickHouse server instead of the
embedded store: the loopback emulator of ClickHouse's HTTP interface (testing/), whose every
statement runs in the real engine (`CLICKHOUSE_EMULATOR_PYTHON` picks the interpreter, so the
engine, that runs it). Every analytics test then goes through clickhouse-connect over HTTP.
"""

import os
import shutil

import pytest
from django.conf import settings

_emulator = None


def pytest_configure(config):
    from core.embedded import ensure_embedded_redis

    ensure_embedded_redis()
    if os.environ.get("TEST_CLICKHOUSE") == "emulator":
        _start_store_emulator()


def _start_store_emulator() -> None:
    """Before any test module is imported: modules read CLICKHOUSE_URL to skip embedded-only
    tests, and subprocesses (the writer, a web server) inherit it from the environment."""
    global _emulator
    from testing.clickhouse_server import ClickHouseEmulator

    path = settings.VAR_DIR / "clickhouse-emulator"
    shutil.rmtree(path, ignore_errors=True)
    _emulator = ClickHouseEmulator(path).start()
    os.environ["CLICKHOUSE_URL"] = _emulator.url
    settings.CLICKHOUSE_URL = _emulator.url


def pytest_report_header(config):
    if _emulator is not None:
        return f"analytics store: ClickHouse emulator, engine {_emulator.engine_version}"
    return f"analytics store: {settings.CLICKHOUSE_URL.split('://')[0]}"


def pytest_unconfigure(config):
    from core.embedded import stop_embedded_redis

    if _emulator is not None:
        _emulator.stop()
    stop_embedded_redis()


@pytest.fixture(scope="session", autouse=True)
def _analytics_store_schema(django_db_blocker):
    """A fresh analytics store for the session, migrated to the current schema (the emulated
    server starts on an empty directory)."""
    from analytics.store.migrate import store_migrate

    if settings.CLICKHOUSE_URL.startswith("chdb://"):
        path = settings.CLICKHOUSE_URL.removeprefix("chdb://")
        shutil.rmtree(path, ignore_errors=True)
    store_migrate()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from core.auth import ApiKeyAuthentication

    cache.clear()
    ApiKeyAuthentication.forget()  # keys of a rolled-back test must not authenticate the next
    yield


@pytest.fixture
def analytics_store():
    """The analytics store, emptied of data (schema kept) before the test, and the Redis event
    buffer emptied too, so events captured by an earlier test never flush into this one."""
    from analytics.events.buffer import buffer_clear
    from analytics.store import store
    from analytics.store.tests.stores import empty_store

    buffer_clear()

    db = store()
    empty_store(db)
    return db


@pytest.fixture
def make_user(db):
    from core.tests.factories import UserFactory

    def make(role: str | None = None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", username="erin")


@pytest.fixture
def pm(make_user):
    return make_user("product", username="priya")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def api_key(db):
    """A secret machine-client key (every scope): (ApiKey, raw key)."""
    from core.services import api_key_create

    return api_key_create(name="test-client", kind="secret", by=None)


@pytest.fixture
def publishable_key(db):
    """A publishable key, as shipped inside an app: (ApiKey, raw key)."""
    from core.services import api_key_create

    return api_key_create(name="test-app", kind="publishable", by=None)


@pytest.fixture
def publishable_client(publishable_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=publishable_key[1])
    return client


@pytest.fixture
def machine_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key[1])
    return client


@pytest.fixture
def api_client_for():
    """A DRF client logged in with a token for the given user."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (threads) consuming every queue of the real broker."""
    from config.celery import app
    from testing.servers import celery_worker_running

    app.conf.task_always_eager = False
    with celery_worker_running() as worker:
        yield worker


@pytest.fixture
def live_asgi(transactional_db):
    """The ASGI app (HTTP and websockets) served by uvicorn in a thread on a free loopback port.

    The thread shares this process's test database, so data made in the test is visible.
    """
    from testing.servers import serve_asgi_in_thread

    server, thread, port = serve_asgi_in_thread()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = settings.BASE_DIR / "test-artifacts"


@pytest.fixture(scope="module")
def _browser():
    """One Chromium per test module. Module scope, not session: Playwright's sync API keeps an
    event loop running, which would stop pytest-asyncio tests in other modules from running.
    Keep browser tests and async tests in separate modules."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the
    # tests make between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(_browser, request):
    """A fresh browser page (1280x860). Save screenshots with `page.screenshot(path=artifact(name))`."""
    context = _browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def artifact():
    """Path for a test artifact (screenshots) under test-artifacts/."""

    def path(name: str) -> str:
        ARTIFACTS.mkdir(exist_ok=True)
        return str(ARTIFACTS / name)

    return path


@pytest.fixture
def login(live_asgi):
    """Log a browser page in through the real login form: login(page, user)."""
    from core.tests.factories import PASSWORD

    def do(pg, user):
        pg.goto(f"{live_asgi}/login/")
        pg.fill("#id_username", user.username)
        pg.fill("#id_password", PASSWORD)
        pg.click("button[type=submit]")
        pg.wait_for_url(f"{live_asgi}/**")

    return do


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def running(db):
    """make running experiment: started `days_ago` days ago, status running (the experiments'
    tests and the analyses that read exposures use it)."""
    import datetime as dt

    from django.utils import timezone

    from experiments.models import Experiment
    from experiments.tests.factories import ExperimentFactory

    def make(days_ago: float = 10, **kwargs):
        experiment = ExperimentFactory(**kwargs)
        experiment.status = Experiment.Status.RUNNING
        experiment.started_at = timezone.now() - dt.timedelta(days=days_ago)
        experiment.save()
        return experiment

    return make
