"""The Faces tab's truncation knob through the served app: optional last input of both endpoints, a
call without it gets exactly the faces it always got (gradio_client and plain REST alike), and the
card's truncation sweep as the tab's compact table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from gandemo.tasks import faces as task
from gandemo.ui import faces
from gandemo.ui.app import request_problem, with_defaults


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _pixels(gallery: list) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"] if isinstance(item, dict) else item)) for item in gallery]


def _rest(app_url: str, api: str, data: list) -> tuple[str, list]:
    call = f"{app_url.rstrip('/')}/gradio_api/call/{api}"
    event = httpx.post(call, json={"data": data}, timeout=60).json()["event_id"]
    kind = None
    with httpx.stream("GET", f"{call}/{event}", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                return kind, json.loads(line.split(":", 1)[1])
    raise AssertionError("no answer")


def _fetch(url: str) -> Image.Image:
    return Image.open(io.BytesIO(httpx.get(url, timeout=30).raise_for_status().content))


def test_a_call_without_psi_gets_the_faces_of_psi_one_and_lower_psi_other_faces(client: Client):
    without = _pixels(client.predict(5, 3, api_name="/generate_faces")[0])
    at_one = _pixels(client.predict(5, 3, 1, api_name="/generate_faces")[0])
    assert all(np.array_equal(a, b) for a, b in zip(without, at_one, strict=True))
    truncated, grid = client.predict(5, 3, 0.5, api_name="/generate_faces")
    assert not np.array_equal(_pixels(truncated)[0], without[0]) and Path(grid).name == "faces_seed5_x3_psi0.5.png"
    gif, frames = client.predict(1, 2, 4, 0.5, api_name="/interpolate_faces")
    assert len(frames) == 4 and Path(gif).name == "walk_1_to_2_psi0.5.gif"


def test_a_rest_client_that_sends_no_psi_keeps_working_and_gets_the_same_faces(app_url: str, client: Client):
    kind, answer = _rest(app_url, "generate_faces", [9, 2])
    assert kind == "complete"
    kind1, answer1 = _rest(app_url, "generate_faces", [9, 2, 1])
    assert kind1 == "complete"
    a = [np.asarray(_fetch(item["image"]["url"])) for item in answer[0]]
    b = [np.asarray(_fetch(item["image"]["url"])) for item in answer1[0]]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and len(a) == 2
    assert _rest(app_url, "interpolate_faces", [1, 2, 3])[0] == "complete"
    kind, answer = _rest(app_url, "generate_faces", [9, 2, 7])
    assert kind == "error" and "truncation psi must be a number from 0 to 1" in answer["error"]


class _Fn:
    """A stand-in for Gradio's BlockFunction: its inputs, handler and preprocess flag."""

    def __init__(self, fn, labels: list[str], preprocess: bool = False) -> None:
        self.fn, self.preprocess, self.api_name = fn, preprocess, fn.__name__
        self.inputs = [type("Block", (), {"label": label})() for label in labels]


def test_only_trailing_inputs_with_defaults_are_filled_and_only_for_raw_handlers():
    gen = _Fn(faces.generate_faces, ["Seed", "How many faces", "Truncation ψ"])
    assert with_defaults(gen, [3, 4]) == [3, 4, 1.0]
    assert with_defaults(gen, [3]) == [3]  # count has no default: left to Gradio's own check
    assert with_defaults(gen, [3, 4, 0.5]) == [3, 4, 0.5]
    assert with_defaults(_Fn(faces.generate_faces, ["a", "b", "c"], preprocess=True), [3, 4]) == [3, 4]
    assert with_defaults(_Fn(faces.generate_faces, ["a", "b"]), [3]) == [3]  # inputs and parameters disagree
    message = request_problem(gen, [3], ValueError())
    assert message == "generate_faces takes 2 to 3 inputs (Seed, How many faces, Truncation ψ); the request sent 1"


def test_the_tab_shows_the_cards_truncation_sweep_as_a_table():
    card = {
        "metrics": {
            "FID vs held-out (996 vs 996)": {"model": 58.96, "psi=0.8": 50.04},
            "precision (k=3)": {"model": 0.526, "psi=0.8": 0.61},
            "recall (k=3)": {"model": 0.05, "psi=0.8": 0.021},
        }
    }
    table = faces.truncation_markdown(card)
    assert "| 1 | 59.0 | 0.53 | 0.050 |" in table and "| 0.8 | 50.0 | 0.61 | 0.021 |" in table
    assert table.index("| 1 |") < table.index("| 0.8 |")
    assert faces.truncation_markdown({"metrics": {}}) == ""


def test_the_shipped_card_carries_the_sweep_the_tab_shows():
    card = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "faces" / "default" / "card.json"
    rows = task.truncation_table(json.loads(card.read_text()))
    assert [psi for psi, _ in rows] == [1.0, 0.8, 0.6]
    assert all({"FID", "precision", "recall"} <= set(m) for _, m in rows)
    # the trade the sweep shows: variety falls as psi falls, realism is higher at every psi < 1 (not
    # necessarily rising all the way: the v3 model's precision peaks at 0.8)
    precision, recall = [m["precision"] for _, m in rows], [m["recall"] for _, m in rows]
    assert recall == sorted(recall, reverse=True) and min(precision[1:]) > precision[0]
