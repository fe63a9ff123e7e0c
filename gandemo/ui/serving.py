"""How the app's server process is tuned for a small machine under many visitors: glibc malloc bounded
and trimmed (after a cycle collection once the server falls idle), MKL's per-thread buffers let go,
Gradio's per-session config copies made lazily, its per-session queue records bounded and a REST call's
own session forgotten once answered, its queue polling slowly while nobody is there, its cached output
files written whole before anyone can fetch them, its analytics kept short, its launch-time page check
given time on busy cores, and imports warmed in the background.
`app.py` and `gandemo.ui.app` call these around `launch`; each one leaves things as they are where the
library is not the expected one."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import inspect
import os
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

# Finished events whose timings Gradio keeps for its analytics page (its default: 10,000, ~1 kB each)
ANALYTICS_EVENTS = 500
# glibc malloc: at most this many arenas (its default is 8 per core: each request thread ends up with
# its own, and freed memory stays in it), blocks from this size up mapped on their own and given back
# when freed (glibc otherwise raises the bound up to 32 MB as blocks are freed, so that the buffers of a
# batch of 64 faces stay in the arenas), and free memory handed back to the system every few seconds.
MALLOC_ARENAS = 2
MALLOC_MMAP_BYTES = 1 << 20
MALLOC_TRIM_EVERY_S = 5.0
# A second in which the whole process used less CPU than this share of a core counts as idle (an idle
# server uses ~2 %: calmer_queue); after IDLE_SECONDS of them following work the cycle collector runs
# once, then the allocator is trimmed (see IdleCollector)
IDLE_CPU_SHARE = 0.05
IDLE_SECONDS = 3
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameter numbers (malloc.h)
# MKL (torch's BLAS on x86) keeps the buffers of its matrix products in a cache per thread until the
# thread ends: ~1.2 MB after one 512² product, in each of the server's worker threads (up to 40). Off,
# MKL frees them at once; no endpoint measured slower (docs/hosting.md). Read when MKL starts: set it
# before torch runs.
MKL_FAST_MM_ENV = "MKL_DISABLE_FAST_MM"
# Sessions whose (empty) record of pending events Gradio's queue keeps: it adds one (~0.3 kB) for every
# session that calls, every API call being one, and never drops it. Its message queues keep 2,000.
PENDING_SESSIONS = 2000
FORGET_EVERY_S = 1.0  # how often answered single-use sessions are looked for (bounded_queue_records)
# How often Gradio's queue looks for work, and for progress to send, while it has none: its own 1 ms and
# 10 ms woke the event loop ~1,100 times a second and kept an idle server at ~12 % of a core (see
# calmer_queue). A request that finds the server idle waits up to this long for its slot.
IDLE_POLL_S = 0.02
PAGE_CHECK_TIMEOUT_S = 60.0  # Gradio's own check of its page at launch: 3 s a try (see patient_page_check)
# Imported in the background while the server starts (see `warm_imports`): GAN Basics' figures
# (matplotlib and its font list, ~1 s of CPU), which its first click would otherwise wait for
WARM_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.collections", "matplotlib.lines")


def _libc() -> Any:
    """glibc, or None where the C library is another (musl, macOS): then the allocator is left as it is."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def bound_allocator() -> bool:
    """Bound what glibc malloc keeps (MALLOC_ARENAS, MALLOC_MMAP_BYTES) and turn MKL's per-thread
    buffer cache off (MKL_FAST_MM_ENV, unless the environment sets it); call it before torch is imported
    and the server's threads start (app.py does, first thing). Returns whether glibc could be bounded.
    Under 20 users the server grew +44 % in the first 40 s and a little every round after without it
    (docs/hosting.md)."""
    os.environ.setdefault(MKL_FAST_MM_ENV, "1")
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES)
    return True


class IdleCollector:
    """Runs Python's full cycle collection once the server falls idle after work. Between requests,
    garbage in reference cycles (figures, frames of finished streams, tracebacks) waits for the
    collector's next full pass, which only comes with more allocations: under 20 users that left
    8-23 MB more held after each round (docs/hosting.md). A full pass takes 0.4-1.5 s here, so it
    runs only after `quiet_ticks` idle seconds in a row, and once per stretch of work."""

    def __init__(self, quiet_ticks: int = IDLE_SECONDS, idle_share: float = IDLE_CPU_SHARE) -> None:
        self.budget = idle_share  # CPU seconds in a one-second tick
        self.quiet_ticks = quiet_ticks
        self.quiet = 0  # idle ticks in a row
        self.pending = False  # work was done since the last collection

    def tick(self, cpu_used_s: float) -> bool:
        """Called once a second with the process's CPU seconds in it; collects (and returns True) on the
        `quiet_ticks`-th idle second in a row after work."""
        if cpu_used_s > self.budget:
            self.pending, self.quiet = True, 0
            return False
        self.quiet += 1
        if not self.pending or self.quiet < self.quiet_ticks:
            return False
        gc.collect()
        self.pending = False
        return True


def _trim_forever(libc: Any, every_s: float) -> None:
    collector, since_trim = IdleCollector(), 0.0
    while True:
        before = time.process_time()
        time.sleep(1.0)
        collected = collector.tick(time.process_time() - before)
        since_trim += 1.0
        if collected or since_trim >= every_s:  # what the collection freed goes back at once
            libc.malloc_trim(0)
            since_trim = 0.0


_trimmer: list[threading.Thread] = []
_lock = threading.Lock()


def start_trimming(every_s: float = MALLOC_TRIM_EVERY_S) -> threading.Thread | None:
    """The daemon thread (one per process, however often this is called) that hands the allocator's
    free memory back to the system every `every_s` seconds (glibc's malloc_trim: free pages inside
    the arenas too, not only at their top), and once more after collecting the cycles left by work
    that has ended (IdleCollector); None where the C library is not glibc."""
    libc = _libc()
    if libc is None:
        return None
    with _lock:
        if not _trimmer:
            _trimmer.append(
                threading.Thread(target=_trim_forever, args=(libc, every_s), name="malloc-trim", daemon=True)
            )
            _trimmer[0].start()
    return _trimmer[0]


def warm_imports(modules: tuple[str, ...] = WARM_IMPORTS) -> None:
    """Import `modules` (what a tab imports on its first click); one that fails is left to that click."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the tab's own import reports it, where a user sees it
            return


def start_warm_imports() -> threading.Thread:
    """`warm_imports` in a daemon thread: it runs while Gradio starts its server and renders the page
    (one core is mostly idle then), instead of in the first GAN Basics request."""
    thread = threading.Thread(target=warm_imports, name="warm-imports", daemon=True)
    thread.start()
    return thread


def patient_page_check(timeout_s: float = PAGE_CHECK_TIMEOUT_S) -> bool:
    """Give Gradio's check of its own page at launch `timeout_s` per try instead of 3 s. It fails the
    launch ("When localhost is not accessible, a shareable link must be created") when the page takes
    longer, which it did on 2 cores kept busy by other processes while a client polled the page.
    Returns False, changing nothing, on a Gradio without that check."""
    from gradio import networking

    check = getattr(networking, "url_ok", None)
    if check is None:
        return False
    if getattr(check, "_gandemo_patient", False):
        return True

    def url_ok(url: str) -> bool:
        import httpx

        for _ in range(5):
            try:
                r = httpx.head(url, timeout=timeout_s, verify=False)
            except (ConnectionError, httpx.ConnectError, httpx.TimeoutException):
                return False
            if r.status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
            time.sleep(0.5)
        return False

    url_ok._gandemo_patient = True  # type: ignore[attr-defined]
    networking.url_ok = url_ok
    return True


class _BlocksWithoutConfigs:
    """What Gradio's SessionState reads from the app at its start, without the blocks whose configs it
    would compute up front."""

    def __init__(self, blocks: gr.Blocks) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict[int, Any] = {}


def lighter_sessions() -> bool:
    """Make Gradio's per-session state compute its copy of the blocks' configs when it is read (only a
    deep link reads it) instead of at the session's start: ~500 kB and the get_config of all ~280
    blocks for every session, and every REST or gradio_client call is a session of its own (the
    server keeps STATE_SESSIONS of them). Nor does a session keep the last inputs and outputs of its
    calls in that copy: only a deep link would show them, the app has no deep-link button, and they
    were what still grew under load (a GAN Basics plot alone is a ~100 kB PNG in its config; the
    sessions' gr.State values are kept as before). The configs, and their order, are the blocks'
    own (tests/ui/test_app.py compares both). Returns False, changing nothing, on a Gradio whose
    SessionState does not look as expected."""
    from gradio import state_holder

    cls = state_holder.SessionState
    if getattr(cls, "_gandemo_lazy_configs", False):
        return True
    eager_init, components = cls.__init__, cls.__dict__.get("components")
    if (
        not isinstance(components, property)
        or "config_values" not in inspect.getsource(eager_init)
        or not callable(getattr(cls, "_update_value_in_config", None))
    ):
        return False

    def __init__(self: Any, blocks: gr.Blocks) -> None:
        eager_init(self, _BlocksWithoutConfigs(blocks))
        ids = blocks.__dict__.get("_gandemo_config_ids")
        if ids is None or ids[0] != len(blocks.blocks):  # one tuple for all sessions, made again if the app grew
            ids = (len(blocks.blocks), tuple(k for k in self.blocks_config.blocks if k in blocks.blocks))
            blocks._gandemo_config_ids = ids
        self._config_ids = ids[1]

    def all_components(self: Any) -> Any:
        config = self.blocks_config
        for k in self._config_ids:
            if k not in self.config_values and k in config.blocks:
                self.config_values[k] = config.config_for_block(k, [], config.blocks[k])
        ids = [k for k in self._config_ids if k in self.config_values]
        ordered = {k: self.config_values[k] for k in ids} | self.config_values
        self.config_values.clear()
        self.config_values.update(ordered)
        return components.fget(self)

    def keep_no_values(self: Any, key: int, value: Any) -> None:
        """Gradio's `_update_value_in_config`, called with every input and output of a call."""

    cls.__init__ = __init__
    cls.components = property(all_components)
    cls._update_value_in_config = keep_no_values
    cls._gandemo_lazy_configs = True
    return True


class _PendingIds(dict):
    """Gradio's `Queue.pending_event_ids_session` (session -> ids of its events whose answer is not yet
    delivered), bounded: adding a session beyond `capacity` drops the oldest sessions that have nothing
    pending. Gradio reads and writes it on its event loop only, so it needs no lock."""

    def __init__(self, capacity: int, items: dict[str, set[str]]) -> None:
        super().__init__(items)
        self.capacity = capacity

    def __setitem__(self, key: str, value: set[str]) -> None:
        fresh = key not in self
        super().__setitem__(key, value)
        if not fresh or len(self) <= self.capacity:
            return
        excess, idle = len(self) - self.capacity, []
        for session, ids in self.items():  # oldest first: usually the first one will do
            if len(idle) == excess:
                break
            if not ids and session != key:
                idle.append(session)
        for session in idle:
            del self[session]


def _forget_session(queue: Any, session: str) -> None:
    """Drop what Gradio keeps of `session`: its records in `queue` and its state (the State values'
    delete callbacks run first, as when Gradio lets a state expire)."""
    queue.pending_event_ids_session.pop(session, None)
    queue.pending_messages_per_session.pop(session, None)
    holder = getattr(queue.blocks, "state_holder", None)
    if holder is not None and session in holder:
        holder.delete_state(session)
        with holder.lock:
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)


def _single_use(queue: Any) -> dict[str, None]:
    """The sessions of `queue`'s calls that named none, oldest first (made here for a queue created
    before bounded_queue_records patched the class)."""
    return queue.__dict__.setdefault("_gandemo_single_use", {})


def _forget_answered_calls(queue: Any) -> None:
    """Forget the single-use sessions (see bounded_queue_records) whose answers have been delivered."""
    calls = _single_use(queue)
    for session in [s for s in calls if not queue.pending_event_ids_session.get(s)]:
        del calls[session]
        _forget_session(queue, session)
    while len(calls) > PENDING_SESSIONS:  # answers never read: Gradio's own bounds apply to those
        del calls[next(iter(calls))]


async def _forget_answered_calls_forever(queue: Any) -> None:
    """`_forget_answered_calls` every FORGET_EVERY_S while the queue runs (not on every call: the
    calls' hot path stays Gradio's own)."""
    while not queue.stopped:
        await asyncio.sleep(FORGET_EVERY_S)
        _forget_answered_calls(queue)


def bounded_queue_records(capacity: int = PENDING_SESSIONS) -> bool:
    """Bound what every Gradio queue created from now on keeps per session:
    - a REST call that names no session (`POST /gradio_api/call/<api>`, as curl or a plain HTTP client
      calls) gets a session of its own, named after its event, that no later call can name; Gradio
      kept its state (~6 kB), message queue (~1.6 kB) and pending-event record until 500 / 2,000 newer
      sessions pushed them out (with a GAN Basics game and figure: ~7 MB). Each such session is now
      forgotten within FORGET_EVERY_S once its answer has been delivered (on the event loop: Gradio
      touches these records there only);
    - the pending-event records of at most `capacity` idle sessions are kept (see _PendingIds); a
      session with an event pending is never dropped.
    Returns False, changing nothing, on a Gradio whose Queue does not look as expected."""
    from gradio import queueing, utils

    cls = queueing.Queue
    if getattr(cls, "_gandemo_bounded_records", False):
        return True
    plain_init, plain_push, plain_start = cls.__init__, cls.push, cls.start
    if "self.pending_event_ids_session: dict" not in inspect.getsource(plain_init) or (
        "body.session_hash = event.session_hash" not in inspect.getsource(plain_push)
    ):
        return False

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        plain_init(self, *args, **kwargs)
        self.pending_event_ids_session = _PendingIds(capacity, self.pending_event_ids_session)

    async def push(self: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
        single_use = body.session_hash is None  # Gradio then names the session after the event
        answer = await plain_push(self, body, *args, **kwargs)
        if single_use and body.session_hash is not None:
            _single_use(self)[body.session_hash] = None
        return answer

    def start(self: Any) -> None:
        plain_start(self)
        utils.run_coro_in_background(_forget_answered_calls_forever, self)

    cls.__init__ = __init__
    cls.push = push
    cls.start = start
    cls._gandemo_bounded_records = True
    return True


def calmer_queue(idle_poll_s: float = IDLE_POLL_S) -> bool:
    """Make Gradio's queues look for work and for progress to send every `idle_poll_s` seconds while
    nothing waits and nothing runs, instead of every 1 ms and 10 ms. Both loops spin on the event loop
    whether or not anyone is there: an idle server used ~12 % of a core (2.2 % now), on a 2-vCPU Space
    that serves nobody, and never looked idle to IdleCollector. While a request waits or runs, Gradio's
    own intervals hold, so a busy queue hands a freed slot on as fast as before. Returns False, changing
    nothing, on a Gradio whose Queue does not poll this way."""
    from gradio import queueing

    cls = queueing.Queue
    if getattr(cls, "_gandemo_calmer", False):
        return True
    source = inspect.getsource(cls)  # the class as written (its __init__ may be wrapped already)
    if "await asyncio.sleep(self.sleep_when_free)" not in source or (
        "await asyncio.sleep(self.progress_update_sleep_when_free)" not in source
    ):
        return False

    def interval(name: str) -> property:
        """Gradio's interval `name` (set in its __init__) while the queue is busy, else idle_poll_s."""

        def get(self: Any) -> float:
            busy = len(self) > 0 or any(job is not None for job in self.active_jobs)
            return self.__dict__[name] if busy else max(idle_poll_s, self.__dict__[name])

        def set_(self: Any, value: float) -> None:
            self.__dict__[name] = value

        return property(get, set_)

    cls.sleep_when_free = interval("sleep_when_free")
    cls.progress_update_sleep_when_free = interval("progress_update_sleep_when_free")
    cls._gandemo_calmer = True
    return True


def whole_cached_files() -> bool:
    """Make Gradio write the output files it caches (images, galleries, bytes; audio: see below) whole
    before their name can be fetched. It names each file after a hash of its content and rewrote the
    file in place on every call with the same output (the same example, seed or picture from two
    users): a fetch of it meanwhile read a truncated or growing file, and the server dropped the
    connection ("peer closed connection" in benchmarks/load.py: 1,160 of 5,633 calls of Edges alone,
    whose answers repeat). Its save_file_to_cache already works this way. Returns False, changing
    nothing, on a Gradio whose cache writers do not look as expected."""
    from gradio import processing_utils as pu

    from gandemo.ui.common import write_whole  # here, not at the top: common imports torch (bound_allocator)

    if getattr(pu, "_gandemo_whole_files", False):
        return True
    plain_audio = pu.audio_to_file
    if (
        "write_bytes(bytes_data)" not in inspect.getsource(pu.save_pil_to_cache)
        or "path.write_bytes(data)" not in inspect.getsource(pu.save_bytes_to_cache)
        or "audio_to_file(sample_rate, data, filename, format=format)" not in inspect.getsource(pu.save_audio_to_cache)
    ):
        return False

    def cache(data: bytes, name: str, cache_dir: str) -> Path:
        """`data` in Gradio's cache as `<hash of data>/<name>`. A file already there is left as it is:
        its name says its content."""
        path = (Path(cache_dir) / pu.hash_bytes(data) / name).resolve()
        path.parent.mkdir(exist_ok=True, parents=True)
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)  # Gradio's delete_cache ages files by ctime: this one is handed out again
        else:
            write_whole(path, lambda staging: staging.write_bytes(data))
        return path

    def save_pil_to_cache(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        return str(cache(pu.encode_pil_to_bytes(img, format), f"{name}.{format}", cache_dir))

    def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
        suffix = "" if Path(file_name).suffix else pu.detect_audio_format(data)
        return str(cache(data, Path(file_name).name + suffix, cache_dir))

    def audio_to_file(sample_rate: int, data: Any, filename: str, format: str = "wav") -> None:
        # Gradio's audio writer (save_audio_to_cache names the file after a hash of the samples)
        write_whole(Path(filename), lambda staging: plain_audio(sample_rate, data, str(staging), format=format))

    pu.save_pil_to_cache, pu.save_bytes_to_cache = save_pil_to_cache, save_bytes_to_cache
    pu.audio_to_file = audio_to_file
    pu._gandemo_whole_files = True
    return True
