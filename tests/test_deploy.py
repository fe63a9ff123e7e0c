"""`python -m gandemo.deploy`: the Space gets exactly the files the app needs, binaries in the Hub's
large-file storage, and an app started from a copy of those files alone serves every tab."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gandemo import deploy
from gandemo.tasks import TASKS
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "checkpoints"
LEFT_BEHIND = ("tests/", "runs/", "benchmarks/", "training/", "scripts/", "screenshots/", ".ci/", ".venv/")


@pytest.fixture(scope="module")
def dry_run() -> list[tuple[int, str, str]]:
    """(size, "LFS" | "git", path) per line of `--dry-run`, as a user sees it."""
    out = subprocess.run(
        [sys.executable, "-m", "gandemo.deploy", "--space", "someone/gan-studio", "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    rows = [row for line in out if len(row := line.split(maxsplit=2)) == 3 and row[1] in ("LFS", "git")]
    total = next(line for line in out if line.startswith(f"{len(rows)} files, "))
    assert f"{sum(r[1] == 'LFS' for r in rows)} to large-file storage" in total
    return [(int(size.replace(",", "")), kind, path) for size, kind, path in rows]


def test_the_space_holds_the_app_and_nothing_of_the_project_around_it(dry_run):
    paths = [p for _, _, p in dry_run]
    assert len(paths) == len(set(paths))
    assert {"app.py", "requirements.txt", "packages.txt", "README.md", ".gitattributes"} <= set(paths)
    assert {"gandemo/__init__.py", "gandemo/ui/app.py", "gandemo/ui/basics/session.py"} <= set(paths)
    assert not [p for p in paths if p.startswith(LEFT_BEHIND) or p == "pyproject.toml" or "__pycache__" in p]
    # the package's code and the assets the app loads, nothing else
    assert all(p.endswith(".py") for p in paths if p.startswith("gandemo/"))
    assert all(p.startswith(("gandemo/", "assets/checkpoints/", "docs/")) for p in paths if "/" in p)
    # every page and picture the README links to goes up, so its links open on the Space
    readme = (ROOT / "README.md").read_text()
    linked = {m for m in re.findall(r"\]\((docs/[^)#\s]+)", readme)}
    assert linked and linked <= set(paths), linked - set(paths)


def test_every_shipped_checkpoint_and_picture_goes_up(dry_run):
    paths = {p for _, _, p in dry_run}
    expected = set()
    for spec in TASKS.values():
        for variant in spec.variants:
            folder = SHIPPED / spec.name / variant
            if (folder / "card.json").is_file():
                names = ["card.json", "model.safetensors", *(p.name for p in folder.glob("*.png"))]
                expected |= {f"assets/checkpoints/{spec.name}/{variant}/{n}" for n in names}
    assert "assets/checkpoints/faces/default/samples.png" in expected and len(expected) >= 20
    assert expected <= paths, expected - paths
    assert {p for p in paths if p.startswith("assets/")} == expected  # and no stray file of those folders


def test_binaries_go_to_large_file_storage_and_text_stays_in_git(dry_run):
    for size, kind, path in dry_run:
        binary = path.endswith((".safetensors", ".png"))
        assert kind == ("LFS" if binary else "git"), path
        assert path == ".gitattributes" or size == (ROOT / path).stat().st_size
        assert size <= deploy.LARGE_FILE_BYTES or kind == "LFS"


def test_the_spaces_gitattributes_say_what_git_must_keep_in_large_file_storage(dry_run, tmp_path: Path):
    """Checked by git itself: in a repository with the generated .gitattributes, exactly the files the
    dry run marks LFS have filter=lfs (what a `git push` of a clone of the Space then needs)."""
    files, _ = deploy.space_files()
    text = next(f.content for f in files if f.path == ".gitattributes").decode()
    for rule in ("*.safetensors", "*.png", "*.gif", "*.jpg", "*.mid", "*.wav", "*.pt", "*.bin"):
        assert f"{rule} filter=lfs diff=lfs merge=lfs -text" in text.splitlines()
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitattributes").write_text(text)
    paths = [p for _, _, p in dry_run]
    out = subprocess.run(
        ["git", "check-attr", "filter", "--", *paths], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    lfs = {line.split(": ")[0] for line in out if line.endswith(": filter: lfs")}
    assert lfs == {p for _, kind, p in dry_run if kind == "LFS"}


def test_this_repository_keeps_its_checkpoints_as_plain_git_files():
    attributes = ROOT / ".gitattributes"
    assert not attributes.exists() or "filter=lfs" not in attributes.read_text()


def test_large_or_binary_files_go_to_large_file_storage_whatever_their_name():
    assert deploy.goes_to_lfs("assets/x.safetensors", 10, binary=False)
    assert deploy.goes_to_lfs("notes.txt", deploy.LARGE_FILE_BYTES + 1, binary=False)
    assert deploy.goes_to_lfs("gandemo/data.dat", 100, binary=True)
    assert not deploy.goes_to_lfs("gandemo/app.py", 100, binary=False)
    odd = deploy.SpaceFile("gandemo/data.dat", None, 100, True)
    assert "gandemo/data.dat filter=lfs diff=lfs merge=lfs -text" in deploy.gitattributes([odd]).splitlines()


# ---- deploying --------------------------------------------------------------------------------------
def _no_token_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE")}
    return env | {"HF_HOME": str(tmp_path), "HF_TOKEN_PATH": str(tmp_path / "token"), "HF_HUB_OFFLINE": "1"}


def test_without_a_token_the_deploy_stops_with_a_plain_message(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "gandemo.deploy", "--space", "someone/gan-studio"],
        cwd=tmp_path,
        env=_no_token_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "no Hugging Face token" in done.stderr and "HF_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr and "deployed" not in done.stdout


def test_a_space_name_must_be_owner_slash_name(capsys):
    with pytest.raises(SystemExit) as exc:
        deploy.main(["--space", "just-a-name", "--dry-run"])
    assert exc.value.code == 2 and "OWNER/NAME" in capsys.readouterr().err


def test_without_huggingface_hub_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import then raises ImportError
    with pytest.raises(SystemExit, match="pip install huggingface_hub"):
        deploy.token()


def test_a_deploy_uploads_exactly_the_listed_files_to_the_space(monkeypatch, tmp_path: Path):
    """With a token, one upload_folder call of repo_type="space" sends a folder holding the dry run's
    files and nothing else (the Hub itself is not reached: HfApi is a stand-in)."""
    import huggingface_hub

    calls: dict[str, dict] = {}

    class FakeApi:
        def __init__(self, token: str) -> None:
            calls["token"] = {"token": token}

        def create_repo(self, repo_id: str, **kw) -> None:
            calls["create_repo"] = {"repo_id": repo_id, **kw}

        def upload_folder(self, *, folder_path: str, **kw) -> None:
            sent = {p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()}
            calls["upload_folder"] = {"sent": sent, **kw}

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert deploy.main(["--space", "someone/gan-studio"]) == 0
    files, _ = deploy.space_files()
    upload = calls["upload_folder"]
    assert calls["token"] == {"token": "hf_test"}
    assert calls["create_repo"]["repo_type"] == "space" and calls["create_repo"]["space_sdk"] == "gradio"
    assert upload["repo_id"] == "someone/gan-studio" and upload["repo_type"] == "space"
    assert upload["sent"] == {f.path for f in files} and upload["delete_patterns"] == "*"


# ---- the app as the Space runs it ---------------------------------------------------------------------
# Run as the Space runs it (python app.py in the folder), with two guards: gandemo must come from the
# copy (this venv also has the repository's editable install), and the project's other packages are
# not there to import.
LAUNCH = """
import pathlib, runpy, sys
for name in ("training", "tests", "benchmarks"):
    sys.modules[name] = None
import gandemo
assert pathlib.Path(gandemo.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve()), gandemo.__file__
sys.argv = ["app.py"]
runpy.run_path("app.py", run_name="__main__")
"""


def _wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app from the Space's files exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the app from the Space's files did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def test_the_app_from_a_copy_of_the_space_files_serves_every_tab(tmp_path: Path):
    from benchmarks._server import RestClient, tab_requests

    files, notes = deploy.space_files()
    assert not notes, notes  # every tab has its shipped model
    space = deploy.stage(files, tmp_path / "space")
    assert not (space / "training").exists() and not (space / "tests").exists()
    requests = tab_requests(space / "assets" / "checkpoints", tmp_path / "examples")
    assert set(requests) == set(TASKS)
    api, inputs = requests["basics"]
    requests["basics"] = (api, (*inputs[:-2], 20, 10))  # 20 toy steps: enough to show the tab answers

    port, log = free_port(), tmp_path / "app.log"
    env = {k: v for k, v in os.environ.items() if k not in ("GANDEMO_CHECKPOINTS", "PYTHONPATH")}
    env |= {"GRADIO_SERVER_PORT": str(port), "GANDEMO_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", LAUNCH], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, server, log)
        client = RestClient(url, timeout=120)
        for tab, (api, inputs) in requests.items():
            result = client.predict(*inputs, api_name=api)  # fetches every file of the answer too
            assert result and any(v is not None for v in result), tab
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
