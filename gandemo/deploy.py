"""`python -m gandemo.deploy --space OWNER/NAME [--dry-run]`: put the app on a Hugging Face Space.

Why not `git push` to the Space: the Hub refuses a push that holds binary files (checkpoints, PNG
pictures) not stored through its large-file storage (LFS/Xet), and it checks every commit pushed, not
only the last; this repository keeps its checkpoints as plain git files, and its history holds every
one ever shipped. This command sends the current files only, through huggingface_hub's
`upload_folder` (HTTP, no git): the Hub stores the binaries in large-file storage, and the Space gets
one commit with exactly the files the app needs and nothing else (files of an earlier deploy that
are no longer needed are deleted there).

`--dry-run` lists those files (size, and whether they go to large-file storage) and needs neither
the network nor a token. A deploy needs huggingface_hub (`pip install huggingface_hub`; the test
extra `.[test]` has it) and a token with write access: `HF_TOKEN`, or one stored by `hf auth login`.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gandemo.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
# what a Space runs (README card: app_file), installs (requirements.txt with pip, packages.txt with
# apt) and shows (the README, whose YAML card configures the Space)
TOP_FILES = ("app.py", "requirements.txt", "packages.txt", "README.md")
PACKAGE = "gandemo"  # the runtime; `training`, tests, benchmarks and scripts stay behind
CHECKPOINTS = Path("assets") / "checkpoints"
CHECKPOINT_FILES = ("card.json", "model.safetensors")  # + the folder's pictures (*.png)
# Larger files must go to large-file storage whatever they are (the Hub rejects them in git).
LARGE_FILE_BYTES = 10 * 1000 * 1000
# The rules of a new Hub repository's .gitattributes, then those for the pictures and sounds a Space
# of this kind holds or may one day hold: whoever clones the Space and pushes with git keeps them in
# large-file storage, as the Hub requires.
HUB_LFS_RULES = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
    "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
)  # fmt: skip
MEDIA_LFS_RULES = (
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.bmp", "*.tif", "*.tiff",
    "*.mid", "*.midi", "*.wav", "*.mp3", "*.ogg", "*.flac", "*.sf2",
)  # fmt: skip
LFS_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
GITATTRIBUTES = ".gitattributes"
SPACE_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


class DeployError(SystemExit):
    """A deploy that cannot go ahead; its message is for the user (exit status 1)."""


@dataclass(frozen=True)
class SpaceFile:
    """One file of the Space: where it goes, where it comes from (None: `content` is written), its
    size and whether the Hub stores it in large-file storage."""

    path: str
    source: Path | None
    size: int
    lfs: bool
    content: bytes | None = None


def _matches(path: str, rule: str) -> bool:
    # gitattributes: a rule without "/" matches the file name in any folder, one with "/" the path
    return fnmatch.fnmatchcase(path if "/" in rule else path.rsplit("/", 1)[-1], rule)


def _is_binary(source: Path) -> bool:
    # git's own test: a NUL byte in the first 8,000 bytes
    with open(source, "rb") as f:
        return b"\0" in f.read(8000)


def goes_to_lfs(path: str, size: int, binary: bool) -> bool:
    """Whether the Hub keeps the file in large-file storage: a binary extension of the rules, any
    file over 10 MB, any other binary file."""
    return any(_matches(path, rule) for rule in (*HUB_LFS_RULES, *MEDIA_LFS_RULES)) or size > LARGE_FILE_BYTES or binary


def _sources(root: Path) -> tuple[list[Path], list[str]]:
    """The files of the working tree the Space needs (relative to `root`), and a note per checkpoint
    folder that is missing (that tab then says how to train it)."""
    files = [Path(name) for name in TOP_FILES]
    files += sorted(
        p.relative_to(root) for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.relative_to(root).parts
    )
    # the pages and pictures the README (the Space's card) links to, so its links open on the Space too
    files += sorted(p.relative_to(root) for p in (root / "docs").rglob("*") if p.suffix in (".md", ".png", ".gif"))
    notes = []
    for spec in TASKS.values():
        for variant in spec.variants:  # only what the registry loads: the catalogue's variants
            folder = CHECKPOINTS / spec.name / variant
            if not (root / folder / "card.json").is_file():
                notes.append(f"no checkpoint at {folder.as_posix()}: that tab will show how to train it")
                continue
            pictures = sorted(p.name for p in (root / folder).glob("*.png") if p.is_file())
            files += [folder / name for name in (*CHECKPOINT_FILES, *pictures) if (root / folder / name).is_file()]
    missing = [f.as_posix() for f in files if not (root / f).is_file()]
    if missing:
        raise DeployError(f"files the Space needs are missing from {root}: {', '.join(missing)}")
    return files, notes


def gitattributes(files: Iterable[SpaceFile]) -> str:
    """The Space's .gitattributes: the Hub's rules, the media rules, then a line per file that goes to
    large-file storage although no rule names it (over 10 MB, or binary), so that it says exactly
    which files are there."""
    rules = (*HUB_LFS_RULES, *MEDIA_LFS_RULES)
    extra = [f.path for f in files if f.lfs and not any(_matches(f.path, r) for r in rules)]
    lines = ["# the Hub's large-file storage (LFS/Xet) rules, written by python -m gandemo.deploy"]
    lines += [f"{rule} {LFS_ATTRIBUTES}" for rule in (*rules, *extra)]
    return "\n".join(lines) + "\n"


def space_files(root: Path = ROOT) -> tuple[list[SpaceFile], list[str]]:
    """Every file of the Space, the generated .gitattributes last, and the notes of `_sources`."""
    sources, notes = _sources(root)
    files = []
    for rel in sources:
        path, size = rel.as_posix(), (root / rel).stat().st_size
        files.append(SpaceFile(path, root / rel, size, goes_to_lfs(path, size, _is_binary(root / rel))))
    attributes = gitattributes(files).encode()
    files.append(SpaceFile(GITATTRIBUTES, None, len(attributes), False, attributes))
    return files, notes


def stage(files: Iterable[SpaceFile], folder: Path) -> Path:
    """Write the files into `folder` as the Space will hold them (hard links where the file system
    allows: nothing is copied twice); returns `folder`."""
    for f in files:
        target = folder / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.source is None:
            target.write_bytes(f.content or b"")
            continue
        try:
            os.link(f.source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(f.source, target)
    return folder


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def report(files: list[SpaceFile]) -> str:
    """One line per file (size in bytes, LFS or git, path), then the totals."""
    lines = [f"{f.size:>12,}  {'LFS' if f.lfs else 'git'}  {f.path}" for f in files]
    lfs = [f for f in files if f.lfs]
    total, lfs_total = sum(f.size for f in files), sum(f.size for f in lfs)
    lines.append(
        f"{len(files)} files, {_size(total)}: {len(lfs)} to large-file storage ({_size(lfs_total)}), "
        f"{len(files) - len(lfs)} as plain git files ({_size(total - lfs_total)})"
    )
    return "\n".join(lines)


def _hub():  # noqa: ANN202 - the module, imported only for a real deploy
    try:
        import huggingface_hub
    except ImportError:
        raise DeployError(
            "deploying needs huggingface_hub: pip install huggingface_hub "
            "(or .venv/bin/pip install -e '.[test]'); --dry-run works without it"
        ) from None
    return huggingface_hub


def token() -> str:
    """The Hub token: HF_TOKEN, else the one huggingface_hub stored (`hf auth login`)."""
    found = _hub().get_token()
    if not found:
        raise DeployError(
            "no Hugging Face token: set HF_TOKEN to a token with write access "
            "(https://huggingface.co/settings/tokens) or run `hf auth login`, then deploy again"
        )
    return found


def deploy(space: str, files: list[SpaceFile]) -> str:
    """Create the Space if it does not exist and upload `files` as one commit; returns its URL."""
    hub = _hub()
    api = hub.HfApi(token=token())
    api.create_repo(space, repo_type="space", space_sdk="gradio", exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gan-studio-space-") as tmp:
        stage(files, Path(tmp))
        api.upload_folder(
            repo_id=space,
            repo_type="space",
            folder_path=tmp,
            commit_message="Deploy GAN Studio (python -m gandemo.deploy)",
            delete_patterns="*",  # the Space holds exactly these files (the Hub keeps .gitattributes anyway)
        )
    return f"https://huggingface.co/spaces/{space}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gandemo.deploy", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", required=True, help="the Space to deploy to, OWNER/NAME (created if missing)")
    p.add_argument("--dry-run", action="store_true", help="list the files and their sizes; send nothing")
    args = p.parse_args(argv)
    if not SPACE_ID.fullmatch(args.space) or ".." in args.space or args.space.endswith((".", "-")):
        p.error(f"--space must be OWNER/NAME (letters, digits, '-', '_', '.'), not {args.space!r}")
    files, notes = space_files()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        print(report(files))
        print(f"dry run: nothing sent; without --dry-run these go to https://huggingface.co/spaces/{args.space}")
        return 0
    print(report(files).splitlines()[-1], file=sys.stderr)
    print(f"deployed: {deploy(args.space, files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
