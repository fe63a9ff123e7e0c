"""The app on a free local port, called through gradio_client as a user's script would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from gandemo.tasks import TASKS
from gandemo.ui.app import build_app, threads_from_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _pixels(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"])) for item in gallery]


def test_generate_faces_gives_a_gallery_and_a_grid(client: Client):
    gallery, grid = client.predict(7, 5, api_name="/generate_faces")
    assert len(gallery) == 5 and all(item["caption"] is None for item in gallery)  # nothing covers a face
    assert all(a.shape == (64, 64, 3) for a in _pixels(gallery))
    assert Image.open(grid).size == (5 * 64 + 6 * 2, 64 + 2 * 2)


def test_same_seed_same_faces_through_the_api(client: Client):
    a, _ = client.predict(99, 3, api_name="/generate_faces")
    b, _ = client.predict(99, 3, api_name="/generate_faces")
    c, _ = client.predict(100, 3, api_name="/generate_faces")
    assert all(np.array_equal(x, y) for x, y in zip(_pixels(a), _pixels(b), strict=True))
    assert not np.array_equal(_pixels(a)[0], _pixels(c)[0])


def test_interpolate_faces_gives_an_animation_and_frames(client: Client):
    gif, frames = client.predict(1, 2, 6, api_name="/interpolate_faces")
    assert len(frames) == 6
    anim = Image.open(gif)
    assert anim.format == "GIF" and anim.n_frames == 6 + 4


@pytest.mark.parametrize("seed", ["4.0", "1e3", 1000.0, " 12 "])
def test_whole_numbers_written_as_text_or_floats_are_accepted(client: Client, seed):
    gallery, grid = client.predict(seed, "2", api_name="/generate_faces")
    assert len(gallery) == 2 and Path(grid).name.startswith("faces_seed")


@pytest.mark.parametrize(
    "api, args, words",
    [
        ("/generate_faces", (-1, 4), "seed must be from 0 to 2147483647"),
        ("/generate_faces", (2**31, 4), "seed must be from 0 to 2147483647"),
        ("/generate_faces", (1, 0), "count must be from 1 to 64"),
        ("/generate_faces", (1, 10_000), "count must be from 1 to 64"),
        ("/generate_faces", (1.5, 4), "seed must be a whole number"),
        ("/generate_faces", (1, 2.5), "count must be a whole number"),
        ("/generate_faces", ("abc", 4), "seed must be a whole number"),
        ("/generate_faces", (None, 4), "seed must be a whole number"),
        ("/interpolate_faces", (1, 2, 1), "frames must be from 2 to 60"),
        ("/interpolate_faces", (1, 2, 500), "frames must be from 2 to 60"),
    ],
)
def test_bad_inputs_get_a_clear_error_and_the_next_request_is_served(client: Client, api, args, words):
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name=api)
    gallery, _ = client.predict(3, 1, api_name="/generate_faces")
    assert len(gallery) == 1


def test_without_a_faces_checkpoint_the_app_still_starts(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)  # empty root: no task has a model
    demo = build_app()
    texts = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
    for spec in TASKS.values():
        if spec.has_checkpoint:
            assert f"{spec.title} is not available yet" in texts
    assert "python -m training faces" in texts
    assert "generate_faces" not in {d.api_name for d in demo.fns.values()}


def test_tabs_follow_the_catalogue_with_gan_basics_first(app_url: str):
    import gradio as gr

    demo = build_app()
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    labels = [b.label for b in tabs if b.parent is tabs[0].parent]  # the app's tabs, not a tab's own inner tabs
    assert labels == [spec.title for spec in TASKS.values()] and labels[0] == "GAN Basics"


def test_building_the_app_leaves_torch_threads_alone(app_url: str):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        build_app()
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("raw, n", [("3", 3), ("", 1), ("zero", 1), ("0", 1), ("-2", 1), ("2.5", 1)])
def test_a_bad_thread_count_falls_back_to_one_with_a_message(monkeypatch, capsys, raw, n):
    monkeypatch.setenv("GANDEMO_THREADS", raw)
    assert threads_from_env() == n
    if n == 1:
        assert "GANDEMO_THREADS" in capsys.readouterr().err


# ---- hosting: where it binds, the queue ---------------------------------------------------------------
def _launch_options(monkeypatch) -> dict:
    import gradio as gr

    from gandemo.ui.app import launch

    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.update(kw, max_size=self._queue.max_size))
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: seen.update(blocked=True))
    with gr.Blocks() as demo:
        gr.Markdown("x")
    launch(demo)
    return seen


def test_launch_binds_localhost_and_never_shares_unless_told(monkeypatch):
    for name in ("GRADIO_SERVER_NAME", "GANDEMO_QUEUE_SIZE", "GRADIO_SHARE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRADIO_SHARE", "true")  # Gradio alone would open a public link
    seen = _launch_options(monkeypatch)
    assert seen["server_name"] == "127.0.0.1" and seen["share"] is False and seen["max_size"] == 40
    assert seen["max_file_size"] == "64mb" and seen["state_session_capacity"] == 500  # bounded memory and disk
    assert seen["blocked"]  # a script serves until interrupted (Gradio is asked not to block, then launch does)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Space sets
    monkeypatch.setenv("GANDEMO_QUEUE_SIZE", "7")
    seen = _launch_options(monkeypatch)
    assert seen["server_name"] == "0.0.0.0" and seen["share"] is False and seen["max_size"] == 7


def test_app_py_launches_the_app_with_these_settings():
    source = (ROOT / "app.py").read_text()
    assert "launch(demo)" in source and "share=True" not in source


@pytest.mark.parametrize("raw", ["0", "-3", "many", ""])
def test_a_bad_queue_size_falls_back_to_the_default_with_a_message(monkeypatch, capsys, raw):
    from gandemo.ui.app import QUEUE_SIZE_DEFAULT, queue_size_from_env

    monkeypatch.setenv("GANDEMO_QUEUE_SIZE", raw)
    assert queue_size_from_env() == QUEUE_SIZE_DEFAULT and "GANDEMO_QUEUE_SIZE" in capsys.readouterr().err


def test_a_full_queue_answers_that_it_is_full_and_then_serves_again(monkeypatch):
    """One request runs (held until released), one waits: with room for one waiting request, the
    third is refused at once with a message that says the queue is full."""
    import threading
    import time

    import gradio as gr
    import httpx
    from gradio_client.utils import QueueError

    from gandemo.ui.app import Studio, configure_queue
    from tests.conftest import free_port

    started, release = threading.Event(), threading.Event()

    def slow(x: float) -> float:
        started.set()
        release.wait(30)
        return x

    with Studio() as demo:
        n = gr.Number()
        n.submit(slow, n, n, api_name="slow")
    monkeypatch.setenv("GANDEMO_QUEUE_SIZE", "1")
    configure_queue(demo).launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        running = client.submit(1, api_name="/slow")
        assert started.wait(30)
        waiting = client.submit(2, api_name="/slow")
        deadline = time.monotonic() + 30
        while len(demo._queue) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(QueueError, match="Queue is full"):
            client.predict(3, api_name="/slow")
        refused = httpx.post(f"{demo.local_url}gradio_api/call/slow", json={"data": [4]}, timeout=30)
        assert refused.status_code == 503 and "Queue is full" in refused.text
        release.set()
        assert running.result(timeout=30) == 1 and waiting.result(timeout=30) == 2
        assert client.predict(5, api_name="/slow") == 5  # served again once there is room
    finally:
        release.set()
        demo.close()


def test_every_event_has_a_bounded_limit_and_long_jobs_have_their_own(app_url: str):
    from gandemo.ui.app import build_app

    demo = build_app()
    limits = {}
    for fn in demo.fns.values():
        if fn.api_name and fn.api_visibility == "public":
            limits[fn.api_name] = (fn.concurrency_id, fn.concurrency_limit)
    # the light tabs: a couple at a time each, in their own queues
    assert limits["generate_faces"][1] == limits["interpolate_faces"][1] == 2
    assert limits["generate_faces"][0] == limits["interpolate_faces"][0] == "faces"
    assert limits["edges_to_photo"][0] == limits["photo_to_edges"][0] == "edges"
    assert limits["compose_music"][1] in (1, "default")
    # the heavy ones: their own queues, and the long jobs take turns on one slot inside them
    assert limits["upscale"] == ("superres", 3) and limits["detect_anomaly"] == ("anomaly", 3)
    assert limits["toy_gan"] == limits["toy_gan_2d"] == ("gan_basics", 2)
    assert all(limit is not None for _, limit in limits.values())  # no public event is unbounded


def test_each_model_is_loaded_once_however_many_tabs_and_requests_use_it(
    checkpoint_root: Path, use_checkpoints, monkeypatch, tmp_path: Path
):
    from gandemo import registry
    from gandemo.ui import anomaly, edges2photo, faces, music, superres

    loads = []
    real = registry.load_checkpoint
    monkeypatch.setattr(registry, "load_checkpoint", lambda folder: loads.append(Path(folder)) or real(folder))
    use_checkpoints(checkpoint_root)
    build_app()
    build_app()  # a second app in the same process (a reload, a test) shares the loaded models
    picture = tmp_path / "p.png"
    Image.new("RGB", (40, 40), "white").save(picture)
    faces.generate_faces(1, 1)
    edges2photo.edges_to_photo(str(edges2photo.example_sketches(tmp_path / "sketches")[0]))
    for variant in ("gan", "psnr"):
        superres.upscale(str(picture), variant, False)
    music.compose_music(1, 80)
    for category in TASKS["anomaly"].variants:
        anomaly.detect_anomaly(str(picture), category, "encoder", 3)
    every = sorted(p.parent for p in checkpoint_root.glob("*/*/card.json"))
    assert sorted(loads) == every


# ---- memory under load: the allocator and Gradio's per-session state ------------------------------------
def test_the_allocator_is_bounded_and_trimmed_by_one_thread_on_glibc():
    from gandemo.ui import serving

    if serving._libc() is None:
        pytest.skip("not glibc: the allocator is left as it is")
    assert serving.bound_allocator() is True
    first = serving.start_trimming()
    assert first is not None and first.daemon and first.is_alive()
    assert serving.start_trimming() is first  # one thread however often the app is launched


def test_mkl_lets_its_buffers_go_when_app_py_starts_before_torch_is_imported():
    import ast
    import subprocess
    import sys

    def started(mkl_env: str) -> list[str]:
        """A fresh process bounds the allocator: was torch imported, and what MKL's variable says."""
        code = (
            f"import os, sys; os.environ.pop('MKL_DISABLE_FAST_MM', None); {mkl_env}\n"
            "from gandemo.ui import serving; serving.bound_allocator()\n"
            "print('torch' in sys.modules, os.environ['MKL_DISABLE_FAST_MM'])"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        return done.stdout.split()

    assert started("") == ["False", "1"]  # set, before torch (hence MKL) has started
    assert started("os.environ['MKL_DISABLE_FAST_MM'] = '0'") == ["False", "0"]  # the environment's choice stays
    # and app.py bounds it before it imports the app, and with it torch
    body = ast.parse((ROOT / "app.py").read_text()).body
    calls = [i for i, node in enumerate(body) if ast.unparse(node) == "bound_allocator()"]
    imports = [i for i, node in enumerate(body) if isinstance(node, ast.ImportFrom) and node.module == "gandemo.ui.app"]
    assert calls and imports and calls[0] < imports[0]


def test_the_queue_keeps_the_records_of_a_bounded_number_of_idle_sessions():
    import gradio as gr

    from gandemo.ui.serving import PENDING_SESSIONS, _PendingIds, bounded_queue_records

    ids = _PendingIds(3, {})
    for session in "abcdef":  # as Gradio's queue does: a record when an event is pushed, emptied when delivered
        ids[session] = set()
        ids[session].add(f"event-{session}")
        if session != "b":  # b's answer is still on its way
            ids[session].remove(f"event-{session}")
    assert list(ids) == ["b", "e", "f"]  # the oldest idle ones went; a pending one is never dropped
    ids["e"] = {"again"}  # a session already recorded: nothing dropped
    assert list(ids) == ["b", "e", "f"] and ids["b"] == {"event-b"}

    assert bounded_queue_records() and bounded_queue_records()  # idempotent
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    records = demo._queue.pending_event_ids_session
    assert isinstance(records, _PendingIds) and records.capacity == PENDING_SESSIONS and records == {}


def test_a_rest_call_that_names_no_session_is_forgotten_once_its_answer_is_delivered():
    import time

    import gradio as gr
    import httpx

    from gandemo.ui.app import Studio, configure_queue
    from gandemo.ui.serving import bounded_queue_records
    from tests.conftest import free_port

    assert bounded_queue_records()
    with Studio() as demo:
        n, calls = gr.Number(), gr.State(0)
        n.submit(lambda x, k: (x, k + 1), [n, calls], [n, calls], api_name="echo")
    configure_queue(demo).launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    call = f"{demo.local_url}gradio_api/call/echo"

    def answer(event: str) -> float:
        with httpx.stream("GET", f"{call}/{event}", timeout=60) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data:")]
        return json.loads(lines[-1].split(":", 1)[1])[0]  # the number (the State's value is not sent)

    def post(x: int) -> str:
        return httpx.post(call, json={"data": [x]}, timeout=60).json()["event_id"]

    try:
        page = Client(demo.local_url, verbose=False)  # a session of its own, as a browser tab has
        assert page.predict(1, api_name="/echo") == 1
        queue, holder = demo._queue, demo.state_holder
        answered = [post(x) for x in (2, 3, 4)]
        assert [answer(e) for e in answered] == [2, 3, 4]
        unread = post(5)  # its answer is not read yet
        assert answer(post(6)) == 6
        post(7)
        deadline = time.monotonic() + 30  # answered ones go within FORGET_EVERY_S
        while set(answered) & set(queue.pending_messages_per_session) and time.monotonic() < deadline:
            time.sleep(0.1)
        # Gradio names such a session after its event: the answered ones are gone from every record...
        for records in (queue.pending_messages_per_session, queue.pending_event_ids_session, holder.session_data):
            assert not set(answered) & set(records)
        # ...one whose answer waits, and a session that a client named, are kept
        assert unread in queue.pending_event_ids_session and unread in queue.pending_messages_per_session
        assert page.session_hash in queue.pending_messages_per_session and page.session_hash in holder
        assert answer(unread) == 5
        assert page.predict(8, api_name="/echo") == 8  # the page's session still serves
        deadline = time.monotonic() + 30  # no call after the last answer: it goes within FORGET_EVERY_S
        while unread in queue.pending_messages_per_session and time.monotonic() < deadline:
            time.sleep(0.1)
        assert unread not in queue.pending_messages_per_session and unread not in holder
        assert page.session_hash in holder
    finally:
        demo.close()


def test_a_queue_made_before_its_class_was_patched_is_served_too():
    from types import SimpleNamespace

    from gandemo.ui.serving import _forget_answered_calls

    # an app whose queue was built before bounded_queue_records ran (the tests' shared app, a reload)
    queue = SimpleNamespace(pending_event_ids_session={"a": set()}, pending_messages_per_session={"a": 1}, blocks=None)
    _forget_answered_calls(queue)
    assert queue._gandemo_single_use == {} and queue.pending_messages_per_session == {"a": 1}  # a page's: kept


def test_an_idle_queue_looks_for_work_less_often_and_a_busy_one_as_gradio_does():
    import gradio as gr

    from gandemo.ui.serving import calmer_queue

    assert calmer_queue(idle_poll_s=0.02) is True
    with gr.Blocks() as demo:
        text = gr.Textbox()
        text.submit(lambda x: x, text, text)
    queue = demo.queue()._queue
    plain = queue.__dict__["sleep_when_free"], queue.__dict__["progress_update_sleep_when_free"]
    assert plain[0] < 0.02 and plain[1] < 0.02  # Gradio's own: 1 ms and 10 ms on Linux
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (0.02, 0.02)  # nobody there
    queue.active_jobs = [None, [object()]]  # a request runs: a freed slot is handed on as fast as before
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == plain
    queue.active_jobs = [None, None]
    assert queue.sleep_when_free == 0.02


def test_the_cycle_collector_runs_once_when_the_server_falls_idle_after_work(monkeypatch):
    from gandemo.ui import serving

    passes = []
    monkeypatch.setattr(serving.gc, "collect", lambda: passes.append(1))
    collector = serving.IdleCollector(quiet_ticks=3, idle_share=0.05)  # idle: under 0.05 s of CPU a second
    assert [collector.tick(0.01) for _ in range(5)] == [False] * 5 and not passes  # idle from the start
    assert collector.tick(0.9) is False and not passes  # busy: never during work
    assert collector.tick(0.02) is False and collector.tick(0.02) is False and not passes  # 2 quiet seconds
    assert collector.tick(0.3) is False and not passes  # work again: the count starts over
    assert [collector.tick(0.02) for _ in range(3)] == [False, False, True] and len(passes) == 1  # 3rd quiet
    assert collector.tick(0.02) is False and len(passes) == 1  # once, not every idle second
    assert collector.tick(1.0) is False and len(passes) == 1
    assert [collector.tick(0.0) for _ in range(3)] == [False, False, True] and len(passes) == 2


def test_sessions_compute_the_blocks_own_configs_only_when_read_and_keep_no_call_values():
    import gradio as gr
    from gradio.state_holder import SessionState

    from gandemo.ui.serving import lighter_sessions

    with gr.Blocks() as demo:
        with gr.Tab("one"):
            text = gr.Textbox("x", label="words")
            gr.Number(3, label="n")
        with gr.Tab("two"):
            gr.Image(label="picture")
    config = demo.default_config
    expected = [config.config_for_block(k, [], b) for k, b in config.blocks.items() if k in demo.blocks]
    assert lighter_sessions() and lighter_sessions()  # idempotent
    session = SessionState(demo)
    assert session.config_values == {}  # nothing computed when a session starts
    session._update_value_in_config(text._id, "changed")  # what Gradio does with every input and output
    assert session.config_values == {}  # not kept: only a deep link would show it
    got = list(session.components)
    assert [c["id"] for c in got] == [c["id"] for c in expected]  # all of them, in the blocks' order
    assert got == expected  # the blocks' own values


def test_the_background_imports_are_what_gan_basics_imports_on_its_first_click():
    import ast
    import sys

    from gandemo.ui import serving

    figures = Path(serving.__file__).parent / "basics" / "figures.py"
    lazy = {
        node.module
        for node in ast.walk(ast.parse(figures.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("matplotlib")
    }
    assert lazy and lazy <= set(serving.WARM_IMPORTS)
    serving.warm_imports(("no_such_module_here", "json"))  # a failing import is left to the tab, quietly
    serving.start_warm_imports().join()
    assert all(name in sys.modules for name in serving.WARM_IMPORTS)


def test_gradios_check_of_its_page_waits_for_a_slow_page():
    import http.server
    import threading
    import time

    from gradio import networking

    from gandemo.ui.serving import patient_page_check

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - the http.server name
            time.sleep(4)  # longer than Gradio's own 3 s a try
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert patient_page_check() and patient_page_check()  # idempotent
        assert networking.url_ok(f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()


def _read_while_written(save, rounds: int = 400) -> list[int]:
    """Sizes of the file read while `save()` writes the same output again and again in another
    thread, as a fetch of one user's answer meets the same answer computed for another user."""
    import threading

    path = Path(save())
    stop, sizes = threading.Event(), []

    def write_again() -> None:
        while not stop.is_set():
            save()

    writer = threading.Thread(target=write_again)
    writer.start()
    try:
        for _ in range(rounds):
            sizes.append(len(path.read_bytes()))
    finally:
        stop.set()
        writer.join()
    return sizes


def test_a_cached_output_is_never_read_half_written_when_another_call_gives_the_same(tmp_path):
    from gradio import processing_utils as pu

    from gandemo.ui import serving

    assert serving.whole_cached_files() is True
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    whole = len(Path(pu.save_pil_to_cache(image, str(tmp_path), format="png")).read_bytes())
    sizes = _read_while_written(lambda: pu.save_pil_to_cache(image, str(tmp_path), format="png"))
    assert set(sizes) == {whole}  # rewritten in place, reads saw empty and partial files
    data = b"RIFF....WAVE" + bytes(5000)
    sizes = _read_while_written(lambda: pu.save_bytes_to_cache(data, "clip", str(tmp_path)))
    assert set(sizes) == {len(data)}
    samples = (np.sin(np.arange(8000) / 10) * 10_000).astype(np.int16)
    path = Path(pu.save_audio_to_cache(samples, 8000, "wav", str(tmp_path)))
    sizes = _read_while_written(lambda: pu.save_audio_to_cache(samples, 8000, "wav", str(tmp_path)))
    assert set(sizes) == {path.stat().st_size} and path.name == "audio.wav"
    assert not list(tmp_path.rglob(".*"))  # no temporary file is left behind
