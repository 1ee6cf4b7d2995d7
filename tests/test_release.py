"""The release path: the wheel is built from a copy of this checkout, installed OFFLINE (no index) into a fresh
venv whose only other packages are this environment's (the dependencies, reached through a .pth file, as
tests/test_example_plugin.py does), and runs `promptci --help` and the demo suite from there; and
.github/workflows/release.yml takes the version from the tag, builds, checks and publishes by trusted
publishing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / ".github" / "workflows" / "release.yml"
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")},
            **OFFLINE, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the sdist holds, so the checkout gets no build/ or egg-info of it."""
    pytest.importorskip("setuptools", minversion="70.1")  # builds a wheel without the `wheel` package
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "promptci", source / "promptci", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300,
                           env=clean_env())
    assert built.returncode == 0, built.stderr
    (found,) = dist.glob("promptci_cli-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv without pip of its own; pip, setuptools and promptci's dependencies are this environment's (a .pth
    file), promptci itself only the wheel: `pip install --no-index` resolves the wheel's requirements against
    them and downloads nothing."""
    home = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([python, "-m", "pip", "install", "--no-index", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=300, env=clean_env())
    assert installed.returncode == 0, installed.stderr
    return python


def test_the_wheel_holds_the_package_its_data_and_the_console_script(wheel: Path) -> None:
    assert re.fullmatch(r"promptci_cli-\d+\.\d+\.\d+.*-py3-none-any\.whl", wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {"promptci/__init__.py", "promptci/py.typed", "promptci/cli/__init__.py", "promptci/gc.py"} <= names
    assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names)
    assert "promptci = promptci.cli:main" in entry_points
    assert "Name: promptci-cli" in metadata and "Requires-Dist: typer" in metadata


def test_the_installed_wheel_runs_help_and_the_demo(fresh_python: Path, tmp_path: Path) -> None:
    bin_dir = fresh_python.parent
    where = subprocess.run([fresh_python, "-c", "import promptci; print(promptci.__file__)"], capture_output=True,
                           text=True, check=True, env=clean_env(), cwd=tmp_path).stdout
    assert where.startswith(str(bin_dir.parent)), where  # the wheel's copy, not this checkout
    helped = subprocess.run([bin_dir / "promptci", "--help"], capture_output=True, text=True, timeout=120,
                            env=clean_env(), cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert all(command in helped.stdout for command in ("run", "diff", "gc", "init"))
    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("promptci.yaml", "app.py"):
        shutil.copy(REPO / name, demo / name)
    for name in ("prompts", "goldens", "schemas"):
        shutil.copytree(REPO / name, demo / name)
    ran = subprocess.run([bin_dir / "promptci", "run", "-q"], capture_output=True, text=True, timeout=300,
                         env=clean_env(), cwd=demo)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (demo / ".promptci" / "promptci.db").is_file()


def release_steps() -> list[dict]:
    workflow = yaml.safe_load(RELEASE.read_text())
    return workflow["jobs"]["build"]["steps"] + workflow["jobs"]["publish"]["steps"]


def test_the_release_workflow_builds_checks_and_publishes_by_trusted_publishing() -> None:
    workflow = yaml.safe_load(RELEASE.read_text())
    assert (workflow.get("on") or workflow[True]) == {"push": {"tags": ["v*"]}}
    runs = "\n".join(s.get("run", "") for s in release_steps())
    assert "python -m build" in runs and "twine check --strict dist/*" in runs
    assert "/tmp/fresh/bin/promptci --help" in runs
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"} and publish["environment"] == "pypi"
    assert publish["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "password" not in (publish["steps"][-1].get("with") or {})  # OIDC, no stored token
    assert workflow["permissions"] == {"contents": "read"}


def version_step() -> str:
    return next(s for s in release_steps() if s.get("id") == "version")["run"]


@pytest.mark.parametrize(("tag", "version"), [("v1.2.3", "1.2.3"), ("v2.0.0rc1", "2.0.0rc1")])
def test_the_version_comes_from_the_tag(tmp_path: Path, tag: str, version: str) -> None:
    (tmp_path / "promptci").mkdir()
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(REPO / "promptci" / "__init__.py", tmp_path / "promptci" / "__init__.py")
    output = tmp_path / "output"
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", version_step()], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "TAG": tag, "GITHUB_OUTPUT": str(output)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f'\nversion = "{version}"\n' in (tmp_path / "pyproject.toml").read_text()
    assert f'\n__version__ = "{version}"\n' in (tmp_path / "promptci" / "__init__.py").read_text()
    assert output.read_text() == f"version={version}\n"


@pytest.mark.parametrize("tag", ["1.2.3", "v1.2", "vnext", "v1.2.3; rm -rf /", "v01.2.3"])
def test_a_tag_that_is_not_a_version_stops_the_release(tmp_path: Path, tag: str) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", version_step()], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "TAG": tag}, timeout=60)
    assert done.returncode == 1 and "is not a release version" in done.stderr
    assert (tmp_path / "pyproject.toml").read_text() == (REPO / "pyproject.toml").read_text()


def test_the_two_version_lines_agree() -> None:
    pyproject = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    package = re.search(r'^__version__ = "([^"]+)"$', (REPO / "promptci" / "__init__.py").read_text(), re.MULTILINE)
    assert pyproject and package and pyproject.group(1) == package.group(1)
