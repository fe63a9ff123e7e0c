"""What every tab shares: the endpoint guard, the "not trained yet" panel, the model-card panel
and a place for files handed to the browser."""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from gandemo.registry import ModelUnavailable, TaskSpec
from gandemo.validation import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])
_OUTPUT_DIR = Path(tempfile.gettempdir()) / "gan-studio-outputs"
_OUTPUT_MAX_AGE_S = 3600


def endpoint(fn: F) -> F:
    """Turn the plain-words errors of tasks and the registry into `gr.Error`, which Gradio shows
    to the user (and gradio_client raises) while the server goes on serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InvalidInput, ModelUnavailable) as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def output_path(name: str) -> Path:
    """A fresh path for a file we return (grid PNG, GIF...); files older than an hour are pruned."""
    _OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in _OUTPUT_DIR.iterdir():
        try:
            if now - old.stat().st_mtime > _OUTPUT_MAX_AGE_S:
                old.unlink()
        except OSError:
            pass  # another request pruned it first
    folder = Path(tempfile.mkdtemp(dir=_OUTPUT_DIR))  # unique per request: no cross-user clobbering
    return folder / name


def unavailable(spec: TaskSpec, message: str) -> None:
    """The tab body shown when a task's model cannot be loaded: what is missing, how to make it."""
    gr.Markdown(f"### {spec.title} is not available yet\n\n{message}", elem_classes=["unavailable"])


def card_markdown(card: dict[str, Any]) -> str:
    """A model card as Markdown: data, training run and the measured metrics with their methods."""
    data, train = card.get("data", {}), card.get("training", {})
    lines = [
        f"**Model**: `{card.get('task')}/{card.get('variant')}` — "
        + ", ".join(f"`{v['class'].split(':')[-1]}`" for v in card.get("arch", {}).values()),
        f"**Data**: {data.get('name', '?')}, {data.get('items', '?')} training images at "
        f"{data.get('resolution', '?')}; held out: {data.get('held_out', 'none')}",
        f"**Training**: {train.get('steps', '?')} steps, {float(train.get('wall_time_s', 0)) / 3600:.2f} h "
        f"on {train.get('device', '?')}{_threads(train)}, preset "
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
            cells = " | ".join(_fmt(m.get(k)) for k in ("model", "baseline", "real", "held_out"))
            lines.append(f"| {name} | {cells} | {m.get('method', '')} |")
    else:
        lines.append("\n*No metrics measured yet: run `python -m training evaluate ...`.*")
    n = 4 if card.get("notes") else 3
    return "\n\n".join(lines[:n]) + "\n" + "\n".join(lines[n:])


def _threads(train: dict[str, Any]) -> str:
    counts = list(dict.fromkeys(s["threads"] for s in train.get("sessions", []) if "threads" in s))
    return f" ({', then '.join(map(str, counts))} thread(s))" if counts else ""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
