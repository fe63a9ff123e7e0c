"""What every tab shares, written once: the endpoint guard (plain and streaming handlers), the
"is this model available" check with its "not trained yet" panel, the "How it works" panel with
the model card and samples, the LaTeX settings, a place for files handed to the browser, the
example pictures drawn by the app's code, and the read-only picture a tab answers with."""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from PIL import Image, ImageDraw

from gandemo import registry
from gandemo.registry import ModelUnavailable
from gandemo.tasks import TaskSpec
from gandemo.validation import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])
_OUTPUT_DIR = Path(tempfile.gettempdir()) / "gan-studio-outputs"
_OUTPUT_MAX_AGE_S = 3600
EXAMPLES_ROOT = Path(tempfile.gettempdir()) / "gan-studio-examples"  # <task>/ per tab, made by the app's code

# $$...$$ displayed, $...$ inline: the one LaTeX setting of every Markdown block with formulas
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


# The long CPU jobs (an anomaly latent search: hundreds of backward passes; a large upscale: up to
# minutes) take turns on ONE slot across the app: a free Space has 2 vCPUs, so one stays for the
# light requests (faces, edges, music, encoder anomaly checks, small upscales), which never wait for
# this slot. Each heavy event also keeps its own Gradio concurrency limit.
HEAVY_SLOT = threading.BoundedSemaphore(1)


@contextlib.contextmanager
def heavy_slot(progress: Callable[..., Any] | None = None, what: str = "long job") -> Iterator[None]:
    """Hold the app's one slot for long CPU jobs while the block runs; while it waits, `progress`
    (a gr.Progress) says so, so that a queued user sees why nothing moves yet."""
    if not HEAVY_SLOT.acquire(blocking=False):
        if progress is not None:
            progress(0, desc=f"waiting for another {what} to finish (long jobs take turns on this 2-vCPU machine)")
        HEAVY_SLOT.acquire()
    try:
        yield
    finally:
        HEAVY_SLOT.release()


def _as_gr_error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def endpoint(fn: F) -> F:
    """Turn the plain-words errors of tasks and the registry into `gr.Error`, which Gradio shows
    to the user (and gradio_client raises) while the server goes on serving. Works for plain
    handlers and for streaming (generator) handlers alike."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except (InvalidInput, ModelUnavailable) as exc:
                raise _as_gr_error(exc) from None

        return streaming  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InvalidInput, ModelUnavailable) as exc:
            raise _as_gr_error(exc) from None

    return wrapper  # type: ignore[return-value]


def write_whole(path: Path, write: Callable[[Path], None]) -> None:
    """Make the file at `path` with `write(staging_path)`: written under a temporary name in the same
    folder (with the same suffix, for writers that go by it) and renamed into place, so that a reader
    never sees it half written and a failed write leaves nothing behind."""
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(staging))
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def save_example(img: Any, path: Path) -> Path:
    """Write an example picture (a PIL image) as PNG at `path`, whole: another app process building
    its tab may be reading the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, lambda staging: img.save(staging, format="PNG"))
    return path


def draw_examples(
    folder: Path,
    drawings: Mapping[str, Callable[[ImageDraw.ImageDraw], None]],
    mode: str,
    size: tuple[int, int],
    background: Any,
) -> list[Path]:
    """A tab's example pictures, drawn by the app's own code (never taken from a data set): each
    drawing on a fresh `mode` canvas of `size` filled with `background`, saved as `<name>.png`
    (spaces as _) in `folder`, rewritten atomically on every build (`save_example`)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in drawings.items():
        img = Image.new(mode, size, background)
        draw(ImageDraw.Draw(img))
        paths.append(save_example(img, folder / f"{name.replace(' ', '_')}.png"))
    return paths


def upload_image(label: str, height: int | None = None, **more: Any) -> gr.Image:
    """A picture the user uploads or pastes. Its handlers take it raw (`preprocess=False`: a dict
    with the file's path, see `image_source`) and decode it with `gandemo.imaging` themselves."""
    return gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], height=height, **more)


def result_image(label: str, elem_id: str, height: int | None = None, **more: Any) -> gr.Image:
    """A picture a tab answers with: PNG, read-only, with download and full-screen buttons."""
    return gr.Image(
        label=label,
        format="png",
        interactive=False,
        buttons=["download", "fullscreen"],
        height=height,
        elem_id=elem_id,
        **more,
    )


def output_path(name: str) -> Path:
    """A fresh path for a file we return (grid PNG, GIF...); files older than an hour are pruned."""
    _OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in _OUTPUT_DIR.iterdir():
        try:
            if now - old.stat().st_mtime > _OUTPUT_MAX_AGE_S:
                if old.is_dir():
                    for f in old.iterdir():
                        f.unlink()
                    old.rmdir()
                else:
                    old.unlink()
        except OSError:
            pass  # another request pruned it first
    folder = Path(tempfile.mkdtemp(dir=_OUTPUT_DIR))  # unique per request: no cross-user clobbering
    return folder / name


def unavailable(spec: TaskSpec, message: str) -> None:
    """The tab body shown when a task's model cannot be loaded: what is missing, how to make it.

    The message is escaped: it holds paths and commands such as `--variant <category>`, which
    the page would otherwise take for an HTML tag and drop."""
    gr.Markdown(
        f"### {spec.title} is not available yet\n\n{html.escape(message, quote=False)}",
        elem_classes=["unavailable"],
    )


def task_tab(spec: TaskSpec, body: Callable[[registry.Checkpoint], None], intro: str = "") -> None:
    """Build a task's tab: its `intro` paragraph (Markdown) and `body(checkpoint)` with the first of
    its variants that loads (the default first, so one trained anomaly category is enough to open the
    tab), else the panel that says what is missing and which command trains it. The one availability
    check of the UI."""
    reason = None
    for variant in spec.variants or (None,):
        try:
            ckpt = registry.get(spec.name, variant)
        except ModelUnavailable as exc:
            reason = reason or str(exc)  # the default variant's reason is the one shown
            continue
        if intro:
            gr.Markdown(intro)
        body(ckpt)
        return
    unavailable(spec, reason or "")


def how_it_works(
    text: str,
    ckpt: registry.Checkpoint,
    samples_label: str,
    more: Sequence[tuple[str, registry.Checkpoint]] = (),
    settings: str = "",
) -> None:
    """The "How it works" accordion: the explanation (with LaTeX) and the models' `settings` (see
    `settings_markdown`), the model card, its samples; then the card and samples of each
    (heading, checkpoint) in `more` (a task's other variants)."""
    with gr.Accordion("How it works", open=False):
        gr.Markdown(text + ("\n" + settings if settings else ""), latex_delimiters=LATEX)
        for heading, shown in [("The shipped model", ckpt), *more]:
            gr.Markdown(f"#### {heading}\n" + card_markdown(shown.card))
            samples = shown.folder / "samples.png"
            if samples.is_file():
                gr.Image(str(samples), label=samples_label, interactive=False, buttons=["download", "fullscreen"])
            curve = shown.folder / "training_curve.png"
            if curve.is_file():
                gr.Image(str(curve), label="Measured during training", interactive=False, buttons=["fullscreen"])


def card_settings(card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a tab's settings paragraph reads from a card: (its hyperparameters, G's constructor
    kwargs), each {} where the card has none."""
    hp = card.get("hyperparameters") or {}
    g = (card.get("arch", {}).get("G") or {}).get("kwargs") or {}
    return hp, g


def settings_markdown(card: dict[str, Any], own: Sequence[str], heading: str = "This model's settings") -> str:
    """A model's settings from its card as one Markdown paragraph ('' if there are none): the
    task's `own` phrases (architecture, loss...), then what every card may hold: batch size,
    optimiser and how inference is done."""
    hp = card.get("hyperparameters") or {}
    parts = list(own)
    if "batch_size" in hp:
        parts.append(f"batch {hp['batch_size']}")
    if "lr" in hp:
        parts.append(f"Adam, learning rate {hp['lr']:g}" + (f", betas {tuple(hp['betas'])}" if hp.get("betas") else ""))
    if card.get("inference"):
        parts.append(f"inference: {card['inference']}")
    return f"**{heading}** (from its card): " + "; ".join(parts) + "." if parts else ""


def image_source(value: Any) -> Any:
    """What `gandemo.imaging` decodes, from what an image input hands a `preprocess=False` handler (the
    file's data as a dict with its path) or an in-process caller passes (path, bytes, PIL, array)."""
    if isinstance(value, dict) and "path" in value:
        return value["path"]
    return value


def card_markdown(card: dict[str, Any]) -> str:
    """A model card as Markdown: data, training run and the measured metrics with their methods."""
    data, train = card.get("data", {}), card.get("training", {})
    lines = [
        f"**Model**: `{card.get('task')}/{card.get('variant')}` — "
        + ", ".join(f"`{v['class'].split(':')[-1]}`" for v in card.get("arch", {}).values()),
        f"**Data**: {data.get('name', '?')}, {data.get('items', '?')} training images at "
        f"{data.get('resolution', '?')}; held out: {data.get('held_out', 'none')}",
        f"**Training**: {train.get('steps', '?')} steps, {float(train.get('wall_time_s', 0)) / 3600:.2f} h "
        f"on {train.get('device', '?')}{_threads(train)}{_precision(train)}, preset "
        f"`{train.get('preset', '?')}`, commit `{str(train.get('commit', '?'))[:12]}`, "
        f"exported {train.get('exported', {}).get('date', '?')}",
    ]
    if card.get("notes"):
        lines.append(f"**Notes**: {card['notes']}")
    metrics = card.get("metrics") or {}
    if metrics:
        lines.append("\n| metric | this model | baseline | real (train) | real (held out) | how it was measured |")
        lines.append("|---|---|---|---|---|---|")
        for name, m in metrics.items():
            columns = ("model", "baseline", "real", "held_out")
            cells = " | ".join(_fmt(m.get(k)) for k in columns)
            # what a task measures beyond the columns (edges: its L1-only model) goes before the method
            extra = "; ".join(f"{k}: {_fmt(v)}" for k, v in m.items() if k not in (*columns, "method"))
            how = f"{extra}. {m.get('method', '')}" if extra else m.get("method", "")
            how = how.replace("|", "\\|")  # a method like "mean |a - b|" must not end the cell
            lines.append(f"| {name} | {cells} | {how} |")
    else:
        lines.append("\n*No metrics measured yet: run `python -m training evaluate ...`.*")
    n = 4 if card.get("notes") else 3
    return "\n\n".join(lines[:n]) + "\n" + "\n".join(lines[n:])


def _threads(train: dict[str, Any]) -> str:
    counts = list(dict.fromkeys(s["threads"] for s in train.get("sessions", []) if "threads" in s))
    return f" ({', then '.join(map(str, counts))} thread(s))" if counts else ""


def _precision(train: dict[str, Any]) -> str:
    return f", {train['precision']}" if train.get("precision") else ""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
