"""The viewer without a browser: who may write (token, Origin, Host), reviews/<prompt>.yaml read and written
through viewer.reviews, hostile reviews files, the bundle's files, and the command line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from viewer_project import viewer_project

from promptci.errors import PromptCIError
from promptci.history import case_history, list_runs
from promptci.viewer.bundle import write_bundle
from promptci.viewer.reviews import output_hash, read_reviews, reviews_path, write_review
from promptci.viewer.server import COOKIE, Viewer, start_in_thread

ADA = {"run": "bbbb00000002", "prompt": "greet", "case": "ada", "model": "openai:gpt-4o-mini", "repeat": 0,
       "hash": output_hash("Hi Ada, welcome back"), "verdict": "bad", "note": "no"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Viewer]]:
    root = viewer_project(tmp_path)
    viewer = start_in_thread(root)
    yield root, viewer
    viewer.stop()


def post(viewer: Viewer, body: object, *, token: str | None = None, origin: str | None = "same",
         host: str | None = None, content_type: str = "application/json",
         action: str = "review") -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Cookie"] = f"{COOKIE}={token}"
    if origin is not None:
        headers["Origin"] = f"http://127.0.0.1:{viewer.port}" if origin == "same" else origin
    if host is not None:
        headers["Host"] = host
    request = urllib.request.Request(viewer.url + "api/" + action, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_review_needs_the_token_the_same_origin_and_a_known_host(served: tuple[Path, Viewer]) -> None:
    root, viewer = served
    assert post(viewer, ADA)[0] == 403  # no token
    assert post(viewer, ADA, token="guess")[0] == 403
    assert post(viewer, ADA, token=viewer.token, origin="http://evil.example")[0] == 403
    assert post(viewer, ADA, token=viewer.token, origin=None)[0] == 403
    assert post(viewer, ADA, token=viewer.token, host="evil.example")[0] == 403  # DNS rebinding
    assert post(viewer, ADA, token=viewer.token, content_type="text/plain")[0] == 403  # a simple cross-site form
    assert not (root / "reviews").exists()
    status, answer = post(viewer, ADA, token=viewer.token)
    assert status == 200 and answer["file"] == "reviews/greet.yaml"
    assert read_reviews(root, "greet")["ada"][ADA["hash"]].verdict == "bad"


def test_a_review_of_an_output_that_is_not_stored_is_refused(served: tuple[Path, Viewer]) -> None:
    root, viewer = served
    status, answer = post(viewer, {**ADA, "hash": output_hash("something else")}, token=viewer.token)
    assert status == 409 and "reload the page" in str(answer["error"])
    status, answer = post(viewer, {**ADA, "verdict": "meh"}, token=viewer.token)
    assert status == 409 and "good or bad" in str(answer["error"])
    assert not (root / "reviews").exists()


def test_pages_refuse_an_unknown_host_and_a_wrong_token(served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    request = urllib.request.Request(viewer.url, headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(viewer.url + "?token=nope")
    assert wrong.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(viewer.url + "run/ffff")
    assert missing.value.code == 404 and "no stored run 'ffff'" in missing.value.read().decode()
    with urllib.request.urlopen(viewer.url) as answer:
        page = answer.read().decode()
    assert viewer.token not in page and "connect-src 'self'" in page


def test_reviews_are_keyed_by_case_and_output_hash_with_who_and_when(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("USER", "reviewer-from-env")
    write_review(tmp_path, "support/triage", "c1", "out 1", "good", "fine", now="2026-12-04T21:00:00Z")
    write_review(tmp_path, "support/triage", "c1", "out 2", "bad", "", now="2026-12-04T21:01:00Z")
    write_review(tmp_path, "support/triage", "c1", "out 1", "bad", "changed my mind", now="2026-12-04T21:02:00Z")
    data = yaml.safe_load((tmp_path / "reviews" / "support" / "triage.yaml").read_text(encoding="utf-8"))
    assert data == {"cases": {"c1": {
        output_hash("out 1"): {"verdict": "bad", "note": "changed my mind", "by": "reviewer-from-env",
                               "at": "2026-12-04T21:02:00Z"},
        output_hash("out 2"): {"verdict": "bad", "note": "", "by": "reviewer-from-env", "at": "2026-12-04T21:01:00Z"},
    }}}


@pytest.mark.parametrize("prompt", ["../escape", "/abs", "a/../../b", "", "a\\b"])
def test_a_prompt_name_cannot_leave_reviews(tmp_path: Path, prompt: str) -> None:
    with pytest.raises(PromptCIError, match="not a plain prompt name"):
        reviews_path(tmp_path, prompt)


@pytest.mark.parametrize("text", ["cases: [1, 2]\n", "cases: {a: [", "\xff\xfe"])
def test_a_damaged_reviews_file_is_named(tmp_path: Path, text: str) -> None:
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "greet.yaml").write_bytes(text.encode("latin-1"))
    with pytest.raises(PromptCIError, match=r"reviews/greet\.yaml"):
        read_reviews(tmp_path, "greet")


@pytest.mark.parametrize(("text", "line", "said"), [
    ("cases:\n  a: {h1: {verdict: good, by: x, at: t}}\n  b:\n    h2: {verdict: maybe}\n", 4,
     "a review needs `verdict: good` or `verdict: bad`, not 'maybe'"),
    ("cases:\n  a:\n    h3: 7\n", 3, "not 7"),
    ("cases:\n  a: {h1: {verdict: good}}\n  b: nope\n", 3, "case 'b' is a string; it must map output hashes"),
    ("- cases\n", 1, "the file is a list; it must map `cases`"),
    ("# reviews\ncases: [1, 2]\n", 2, "`cases` is a list"),
])
def test_an_entry_that_is_not_a_review_is_named_with_its_line_and_the_fix(tmp_path: Path, text: str, line: int,
                                                                          said: str) -> None:
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "greet.yaml").write_text(text)
    with pytest.raises(PromptCIError) as refused:
        read_reviews(tmp_path, "greet")
    assert str(refused.value.location) == f"reviews/greet.yaml:{line}"
    assert said in refused.value.message and ("fix the line" in refused.value.message)


def test_history_reads_runs_with_branch_and_a_case_across_runs(tmp_path: Path) -> None:
    root = viewer_project(tmp_path)
    rows = list_runs(root)
    assert [(r.run_id, r.branch, r.command) for r in rows] == [("bbbb00000002", "feature", "run"),
                                                                      ("aaaa00000001", "main", "run")]
    samples = case_history(root, "greet", "ada")
    assert [(s.run_id, s.status, s.output) for s in samples] == [("aaaa00000001", "passed", "Hello Ada!"),
                                                                  ("bbbb00000002", "failed", "Hi Ada, welcome back")]


def test_the_bundle_holds_every_page_and_no_request(tmp_path: Path) -> None:
    root = viewer_project(tmp_path)
    names = sorted(p.name for p in write_bundle(root, tmp_path / "out"))
    assert names == ["case.html", "compare-aaaa00000001-bbbb00000002.html", "cost.html", "index.html",
                     "run-aaaa00000001.html", "run-bbbb00000002.html"]
    for name in names:
        assert "connect-src 'none'" in (tmp_path / "out" / name).read_text(encoding="utf-8")


def test_view_bundle_from_the_command_line(cli, tmp_path: Path) -> None:
    root = viewer_project(tmp_path)
    result = cli("view", "--bundle", tmp_path / "out", "--run", "aaaa", "--root", root)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case.html", "cost.html", "index.html",
                                                                   "run-aaaa00000001.html"]
    unknown = cli("view", "--bundle", tmp_path / "out2", "--run", "zzzz", "--root", root)
    assert unknown.exit_code == 2 and "no stored run 'zzzz'" in unknown.output


def test_the_runs_list_shows_the_command_that_made_each_run(tmp_path: Path) -> None:
    import sqlite3

    from promptci.project import discover

    root = viewer_project(tmp_path)
    with sqlite3.connect(discover(root).db_path) as conn:
        conn.execute("UPDATE runs SET command = 'promptci run -k ada' WHERE id = 'bbbb00000002'")
    assert [r.command for r in list_runs(root)] == ["promptci run -k ada", "run"]
    page = write_bundle(root, tmp_path / "out")[0].read_text(encoding="utf-8")
    assert "promptci run -k ada" in page


def test_the_cost_page_groups_by_each_requests_branch_as_cost_does(tmp_path: Path) -> None:
    """The live page's tables are summed by the store (its day sums), a bundle's from its runs' rows: the same
    tables, with each request's branch from the ledger as `promptci cost --by branch` has it."""
    from datetime import datetime, timezone

    from promptci.cost.report import cost_tables
    from promptci.project import discover
    from promptci.store import LedgerEntry, Store
    from promptci.viewer.pages import COST_DIMENSIONS, cost_data, ledger_tables

    entries = [LedgerEntry(at=f"2026-12-0{day}T10:00:00Z", run_id=run, git_commit=None, prompt=prompt, case_id="c",
                           model="m", provider="openai", cost_usd=cost, branch=branch)
               for day, run, prompt, cost, branch in ((1, "r1", "p", 0.5, "main"), (1, "r2", "q", 0.25, "feature"),
                                                      (2, "r2", "q", 0.25, "feature"), (2, None, "p", 1.0, None))]
    project = discover(viewer_project(tmp_path))
    with Store.open(project.db_path) as store:
        store._write("DELETE FROM ledger", ())
        for entry in entries:
            store.record_request(entry)
    live = cost_data(*cost_tables(project, "7d", COST_DIMENSIONS, now=datetime(2026, 12, 3, tzinfo=timezone.utc)),
                     "7d")
    assert live == cost_data(*ledger_tables(entries), "7d")
    assert [(row[0], row[1], row[2]) for row in live["branch"]] == [("-", 1, 1.0), ("feature", 2, 0.5),
                                                                    ("main", 1, 0.5)]
    assert [row[0] for row in live["day"]] == ["2026-12-01", "2026-12-02"]
    assert live["total"] == [4, 2.0, 0]


def test_help_does_not_import_the_viewer() -> None:
    import subprocess
    import sys

    code = ("import sys; from promptci.cli import app; "
            "print([m for m in ('promptci.viewer.server', 'http.server', 'promptci.viewer.pages')"
            " if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_view_serves_prints_the_tokened_address_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    root = viewer_project(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "promptci", "view", "--no-open", "--root", str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("promptci view: http://127.0.0.1:") and "/?token=" in line, line
        address = line.split(": ", 1)[1].strip()
        with urllib.request.urlopen(address) as answer:  # the token's address: a cookie, then the runs
            assert "promptci runs" in answer.read().decode()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        process.kill()
        process.wait()


def test_bad_bundle_folder_and_busy_port_are_usage_errors(cli, tmp_path: Path) -> None:
    root = viewer_project(tmp_path)
    (tmp_path / "a-file").write_text("x")
    result = cli("view", "--bundle", tmp_path / "a-file", "--root", root)
    assert result.exit_code == 2 and "a file is there; give a folder" in result.output
    viewer = start_in_thread(root)
    try:
        busy = cli("view", "--no-open", "--port", str(viewer.port), "--root", root)
        assert busy.exit_code == 2 and f"--port {viewer.port}: cannot listen" in busy.output
    finally:
        viewer.stop()


def test_bundle_file_names_never_come_from_an_unsafe_run_id() -> None:
    from promptci.viewer.bundle import _file_part

    assert _file_part("0a1b2c3d4e5f") == "0a1b2c3d4e5f"
    for hostile in ("../../etc/passwd", "a/b", "x" * 100, "<script>", ""):
        name = _file_part(hostile)
        assert len(name) == 16 and name.isalnum()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300) | st.builds(yaml.safe_dump, st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)))
def test_any_reviews_file_reads_as_reviews_or_a_named_error(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir(exist_ok=True)
    (folder / "greet.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        found = read_reviews(tmp_path, "greet")
    except PromptCIError as error:
        assert "reviews/greet.yaml" in str(error)
    else:
        assert all(r.verdict in ("good", "bad") for by_hash in found.values() for r in by_hash.values())


def test_an_alias_bomb_in_a_reviews_file_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "greet.yaml").write_text("\n".join(lines) + "\ncases: *a8\n", encoding="utf-8")
    with pytest.raises(PromptCIError, match=r"reviews/greet\.yaml") as refused:
        read_reviews(tmp_path, "greet")
    assert "alias" in str(refused.value).lower()


def test_starting_a_diff_needs_the_token_too(served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    assert post(viewer, {"a": "HEAD", "b": ""}, action="diff")[0] == 403
    elsewhere = "http://127.0.0.1:1"
    assert post(viewer, {"a": "HEAD", "b": ""}, token=viewer.token, origin=elsewhere, action="diff")[0] == 403
    status, answer = post(viewer, {"a": "HEAD", "b": ""}, token=viewer.token, action="diff")
    assert status == 409 and "git" in str(answer["error"]).lower()  # the fixture project is no repository


def test_a_finished_runs_page_data_is_built_once_and_reviews_are_read_for_every_page(tmp_path: Path) -> None:
    from promptci.viewer.site import Site

    root = viewer_project(tmp_path)
    site = Site.at(root)
    first = site.run(ADA["run"])
    kept = site.run_data[ADA["run"]]
    assert "reviewed" not in first.split('id="viewer-data">')[1].split("</script>")[0]
    write_review(root, "greet", "ada", "Hi Ada, welcome back", "bad", "too familiar")
    second = site.run(ADA["run"])
    assert site.run_data[ADA["run"]] is kept  # not rebuilt from the store
    viewer_json = json.loads(second.split('id="viewer-data">')[1].split("</script>")[0])
    [review] = viewer_json["reviews"]["greet"]["ada"].values()
    assert review["verdict"] == "bad" and review["note"] == "too familiar"
    assert second.split('id="promptci-data">')[1] == first.split('id="promptci-data">')[1]
