"""Shared fixtures: temporary projects, the CLI, and an environment without real keys."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fakeserver import FakeServer, running_fake_server
from helpers_project import make_project
from hypothesis import settings
from pgserver import PostgresServer, running_postgres
from pgserver import missing_reason as postgres_missing_reason
from typer.testing import CliRunner

from promptci.cli import app
from promptci.store import Store

REPO = Path(__file__).resolve().parent.parent
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")

# No per-example time limit for property tests (Hypothesis' default is 200 ms): on a loaded 2-core machine any
# example can take longer, and Hypothesis then fails the test as flaky.
settings.register_profile("promptci", deadline=None)
settings.load_profile("promptci")

# A suite started in the background of a non-interactive shell (`pytest &`, as CI wrappers may) inherits SIGINT
# ignored, and so would every promptci it starts: the Ctrl-C tests would wait on runs that cannot hear it. A
# handler (not an ignore) is reset to the default in each child, which then installs Python's own.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider: drop keys and base URLs the developer's shell may hold."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_backoff_waits(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> list[float]:
    """Retries and rate-limit waits happen, their waits are recorded but not slept (tests marked real_waits keep
    them); the clock that limits and deadlines are read on moves on by what was skipped, and only by it."""
    waits: list[float] = []
    if request.node.get_closest_marker("real_waits"):
        return waits

    skipped = [0.0]  # the waits' sum: the clock deadlines are read on moves on by it, as if they were slept

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)
        skipped[0] += seconds

    monkeypatch.setattr("promptci.retrying.default_sleep", record_wait)
    started = time.monotonic()  # and only by it: waits and deadlines read the same in a loaded machine
    monkeypatch.setattr("promptci.retrying.default_clock", lambda: started + skipped[0])
    return waits


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A fake OpenAI/Anthropic server on 127.0.0.1; tune it with server.config / server.script(...)."""
    with running_fake_server() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path):
    """project({"prompts/x.txt": "...", ...}) -> root, a fresh project under tmp_path."""

    def build(files: Mapping[str, str | bytes] | None = None, *, with_greet: bool = False) -> Path:
        return make_project(tmp_path / "project", files, with_greet=with_greet)

    return build


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    """A copy of the bundled demo suite (promptci.yaml, app.py, prompts, goldens, schemas)."""
    root = tmp_path / "demo"
    root.mkdir()
    for name in ("promptci.yaml", "app.py"):
        shutil.copy(REPO / name, root / name)
    for name in ("prompts", "goldens", "schemas"):
        shutil.copytree(REPO / name, root / name)
    return root


class Cli:
    """Invokes `promptci` in-process with typer's CliRunner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, env: Mapping[str, str] | None = None):
        return self.runner.invoke(app, [str(a) for a in args], env=dict(env or {}))


@pytest.fixture
def cli() -> Iterator[Cli]:
    yield Cli()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the whole session (skipped, saying why, without the binaries)."""
    reason = postgres_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database of the session's cluster."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store test that asks for `store` runs against both backends: the embedded SQLite file and a PostgreSQL
    team store (the throwaway cluster of `postgres_url`)."""
    if request.param == "sqlite":
        with Store.open(tmp_path / ".promptci" / "promptci.db") as opened:
            yield opened
    else:
        from promptci.pgstore import PostgresStore

        with PostgresStore.open(request.getfixturevalue("postgres_url")) as opened:
            yield opened
