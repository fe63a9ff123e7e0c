"""The GAN Basics live session (gandemo/ui/basics/session.py) through gradio_client, as a user's
script would call it: streaming, sessions that continue and replay, isolation between users, bad
inputs, and runs that stop when paused or when the page goes away. The tab's body is served on its
own, without the rest of the app."""

from __future__ import annotations

import base64
import gc
import io
import json
import threading
import time
import uuid
import weakref

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from PIL import Image

from gandemo.tasks import TASKS
from gandemo.tasks.basics import Settings1D, ToyGAN1D
from gandemo.ui.basics import build
from gandemo.ui.basics import session as ui
from tests.conftest import free_port

GAUSS = ("gaussian", "normal", "non-saturating", 2e-3, 2e-4, 1, 64, 0)
BIMODAL = ("bimodal", "uniform", "minimax", 1e-3, 1e-3, 2, 32, 1)
RING = ("ring", "pacgan", 1e-3, 1e-3, 1, 64, 0)


@pytest.fixture(scope="module")
def tab_url():
    """The GAN Basics tab alone, served once per module on a free local port (no app, no models)."""
    with gr.Blocks() as demo:
        build(TASKS["basics"])
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def new_client(tab_url: str):
    """Makes browser sessions (clients); closes them all together at the end, since each close
    waits up to a second for its heartbeat thread."""
    made: list[Client] = []

    def make() -> Client:
        made.append(Client(tab_url, verbose=False))
        return made[-1]

    yield make
    closers = [threading.Thread(target=c.close) for c in made]
    for t in closers:
        t.start()
    for t in closers:
        t.join()


@pytest.fixture(scope="module")
def client(new_client):
    """One browser session shared by the tests that do not care where its games stand."""
    return new_client()


def _wait_for_no_runs(timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while ui.active_runs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ui.active_runs() == 0, "a run went on streaming after its page was gone"


def _run(client: Client, api: str, *args) -> list[tuple]:
    job = client.submit(*args, api_name=api)
    job.result()
    return job.outputs()


def _png(plot: dict) -> Image.Image:
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(plot["plot"].split(",", 1)[1])))


def test_a_figure_outlives_its_session_and_draws_the_next_new_game(monkeypatch):
    # first in the module, before its server starts: a stream of that server would take idle figures too
    monkeypatch.setattr(ui, "IDLE_FIGURES_KEPT", 1)
    monkeypatch.setattr(ui, "_kept", type(ui._kept)())
    first = list(ui.toy_gan(*GAUSS, 3, 3, ui.Session()))[-1][3]
    figure = first.figure
    # the session ends (its state expired; a REST call's is forgotten once answered). gc: matplotlib's
    # first parse of a tick label (pyparsing) leaves cycles that hold the drawing's frames a while
    del first
    gc.collect()
    monkeypatch.setattr(ui, "_idle", {ui.Figure1D: [figure]})  # only this one: earlier tests' sessions end too
    second = list(ui.toy_gan(*BIMODAL, 4, 4, ui.Session()))[-1]
    assert second[3].figure is figure and second[2]["step"] == 4  # retargeted, not drawn anew
    assert second[0].plot == list(ui.toy_gan(*BIMODAL, 4, 4, ui.Session()))[-1][0].plot  # as a new one draws
    others = [list(ui.toy_gan(*GAUSS, 1, 1, ui.Session()))[-1][3] for _ in range(3)]
    figures = [weakref.ref(s.figure) for s in others]
    del others
    gc.collect()
    assert len(ui._idle[ui.Figure1D]) == 1  # bounded (other tests' sessions may end now too)
    assert sum(f() is not None for f in figures) <= 1  # the rest are freed


def test_toy_gan_streams_a_plot_and_the_numbers_every_few_steps(client: Client):
    frames = _run(client, "/toy_gan", *GAUSS[:-1], 5, 30, 10)  # seed 5: a game of its own, from step 0
    assert [numbers["step"] for _, _, numbers in frames] == [0, 10, 20, 30]
    plot, markdown, numbers = frames[-1]
    img = _png(plot)
    assert img.size == (945, 414) and len(img.convert("L").getcolors(10_000)) > 20  # a drawing, not a blank
    assert "Done: 30 steps" in markdown and "JSD" in markdown
    assert 0 <= numbers["jsd_bits"] <= 1 and 0 <= numbers["mean_abs_d_minus_d_star"] <= 1
    assert (numbers["data_mean"], numbers["data_std"]) == (1.0, 0.5)
    assert frames[0][2]["jsd_bits"] != numbers["jsd_bits"]  # it trained between the frames


def test_start_again_goes_on_and_the_same_settings_replay_the_same_game(new_client):
    first, again = new_client(), new_client()
    _run(first, "/toy_gan", *GAUSS, 20, 20)
    continued = _run(first, "/toy_gan", *GAUSS, 20, 20)[-1][2]
    in_one_go = _run(again, "/toy_gan", *GAUSS, 40, 40)[-1][2]
    assert continued["step"] == in_one_go["step"] == 40
    for key in ("d_loss", "g_loss", "jsd_bits", "g_mean", "g_std"):
        assert continued[key] == pytest.approx(in_one_go[key], rel=1e-6), key


def test_two_users_with_different_settings_do_not_touch_each_others_game(new_client):
    a, b = new_client(), new_client()
    job_a = a.submit(*GAUSS, 30, 10, api_name="/toy_gan")
    job_b = b.submit(*BIMODAL, 30, 10, api_name="/toy_gan")  # runs alongside a's
    got_a, got_b = job_a.result()[2], job_b.result()[2]
    assert got_a["data_mean"] == 1.0 and got_b["data_mean"] == 0.0
    assert got_a["jsd_bits"] != got_b["jsd_bits"]
    # each equals the same game played alone, here in the test process
    alone = ToyGAN1D(Settings1D(*GAUSS))
    alone.train(30)
    view = alone.snapshot()
    assert got_a["step"] == 30
    assert got_a["g_mean"] == pytest.approx(view.g_mean, rel=1e-5)
    assert got_a["jsd_bits"] == pytest.approx(view.jsd_bits, rel=1e-5)


def test_toy_gan_2d_streams_points_over_ds_verdict_and_the_mode_counts(client: Client):
    frames = _run(client, "/toy_gan_2d", *RING, 20, 10)
    assert [numbers["step"] for _, _, numbers in frames] == [0, 10, 20]
    plot, markdown, numbers = frames[-1]
    assert _png(plot).size == (945, 414)
    assert numbers["modes_total"] == 8 and 0 <= numbers["modes_covered"] <= 8
    assert 0 <= numbers["high_quality_percent"] <= 100
    assert "modes covered" in markdown


@pytest.mark.parametrize(
    "api, args, words",
    [
        ("/toy_gan", (*GAUSS[:3], 0, *GAUSS[4:], 10, 10), "learning rate of D must be a number from 1e-05 to 0.1"),
        ("/toy_gan", (*GAUSS[:4], 100, *GAUSS[5:], 10, 10), "learning rate of G must be a number .*, got 100"),
        ("/toy_gan", (*GAUSS[:3], "nan", *GAUSS[4:], 10, 10), "learning rate of D .* got nan"),
        ("/toy_gan", (*GAUSS[:5], 0, *GAUSS[6:], 10, 10), r"k \(D steps per G step\) must be from 1 to 10"),
        ("/toy_gan", ("cauchy", *GAUSS[1:], 10, 10), "distribution must be one of gaussian, bimodal, uniform"),
        ("/toy_gan", (*GAUSS, 0, 10), "steps must be from 1 to 20000"),
        ("/toy_gan", (*GAUSS, 10, 0), "steps per plot update must be from 1 to 500"),
        ("/toy_gan_2d", ("ring", "unrolled", *RING[2:], 10, 10), "loss must be one of standard, wgan-gp, pacgan"),
        ("/toy_gan_2d", (*RING[:2], 1e-3, 0.5, *RING[4:], 10, 10), "learning rate of G .* got 0.5"),
    ],
)
def test_bad_inputs_get_a_clear_error_and_the_next_request_is_served(client: Client, api, args, words):
    # every bad value is checked in tests/tasks/test_basics.py; these go the whole way through the server
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name=api)
    assert client.predict(*GAUSS, 1, 1, api_name="/toy_gan")[2]["step"] >= 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused_by_the_endpoint_itself(bad: float):
    # gradio_client cannot even send NaN (it is not JSON), but a script calling over HTTP with a
    # lenient encoder can: the endpoint refuses it before any work
    with pytest.raises(gr.Error, match=f"learning rate of G must be a number from 1e-05 to 0.1, got {bad}"):
        next(ui.toy_gan(*GAUSS[:4], bad, *GAUSS[5:], 10, 10))
    with pytest.raises(gr.Error, match=f"learning rate of D must be a number .*, got {bad}"):
        next(ui.toy_gan_2d(RING[0], RING[1], bad, *RING[3:], 10, 10))


def test_a_run_stops_at_the_time_cap(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ui, "RUN_SECONDS_MAX", 0.5)  # the real cap is minutes; the logic is the same
    frames = list(ui.toy_gan(*GAUSS, ui.RUN_STEPS_MAX, 5))
    _, markdown, numbers, session = frames[-1]
    assert "Stopped at the time cap (0 s)" in markdown or "Stopped at the time cap (1 s)" in markdown
    assert 0 < numbers["step"] < ui.RUN_STEPS_MAX and session.gan.steps == numbers["step"]


def test_pause_stops_the_run_and_start_goes_on_from_there(client: Client):
    _wait_for_no_runs()
    job = client.submit(*GAUSS, 20_000, 5, api_name="/toy_gan")
    while len(job.outputs()) < 3:
        time.sleep(0.05)
    job.cancel()  # what Pause does: cancel the streaming event
    _wait_for_no_runs()
    paused_at = job.outputs()[-1][2]["step"]
    assert 0 < paused_at < 20_000
    resumed = client.predict(*GAUSS, 5, 5, api_name="/toy_gan")[2]
    assert resumed["step"] >= paused_at + 5


def test_closing_the_page_stops_the_run(tab_url: str):
    """A browser that goes away drops its event stream; the server must stop training for it."""
    _wait_for_no_runs()
    base = tab_url.rstrip("/") + "/gradio_api"
    with httpx.Client(timeout=30) as http:
        config = http.get(tab_url.rstrip("/") + "/config").raise_for_status().json()
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "toy_gan")
        session = uuid.uuid4().hex[:11]
        body = {"data": [*GAUSS, 20_000, 5, None], "fn_index": fn_index, "session_hash": session}
        http.post(f"{base}/queue/join", json=body).raise_for_status()
        with http.stream("GET", f"{base}/queue/data", params={"session_hash": session}) as stream:
            frames = 0
            for line in stream.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_generating":
                    frames += 1
                    if frames == 2:
                        assert ui.active_runs() >= 1
                        break  # leaving the block closes the connection, as a closed tab does
    _wait_for_no_runs()


def test_only_the_most_recent_sessions_keep_their_figure_and_the_others_draw_one_again(monkeypatch):
    monkeypatch.setattr(ui, "FIGURES_KEPT", 2)
    monkeypatch.setattr(ui, "_kept", type(ui._kept)())
    sessions = [list(ui.toy_gan(*GAUSS, 3, 3, ui.Session()))[-1][3] for _ in range(4)]
    assert [s.figure is not None for s in sessions] == [False, False, True, True]  # memory stays bounded
    _, _, numbers, again = list(ui.toy_gan(*GAUSS, 3, 3, sessions[0]))[-1]  # its next click draws again
    assert again is sessions[0] and again.figure is not None and numbers["step"] == 6  # the same game goes on
    assert ui.pause(ui.numbers_1d)(sessions[1])[1] == "**Paused at step 3; Start goes on from here.**"


def test_only_the_most_recent_sessions_keep_their_game_and_the_others_start_again(monkeypatch):
    monkeypatch.setattr(ui, "FIGURES_KEPT", 1)
    monkeypatch.setattr(ui, "GAMES_KEPT", 2)
    monkeypatch.setattr(ui, "_kept", type(ui._kept)())
    streaming = ui.toy_gan(*GAUSS, 6, 3, ui.Session())
    busy = next(streaming)[3]  # a run of the oldest session is streaming: its game is not let go
    sessions = [list(ui.toy_gan(*GAUSS, 3, 3, ui.Session()))[-1][3] for _ in range(3)]
    assert [s.gan is not None for s in [busy, *sessions]] == [True, False, True, True]  # bounded
    assert [s.figure is not None for s in [busy, *sessions]] == [True, False, False, True]
    assert list(streaming)[-1][2]["step"] == 6  # the streaming run went on to its end
    again = list(ui.toy_gan(*GAUSS, 3, 3, sessions[0]))
    assert again[0][1].startswith("**Running 3 steps from step 0")  # a let-go game starts again
    assert again[-1][2]["step"] == 3 and again[-1][3] is sessions[0]
