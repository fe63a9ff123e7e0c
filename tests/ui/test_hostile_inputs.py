"""Hostile inputs, one table per endpoint: broken, huge and odd pictures; numbers as text, floats,
negative, huge, empty, None, lists; nonsense for choices and flags. Every case must get either the
app's own plain message (a `gr.Error` that names what was wrong; never Gradio's generic "the upstream
app has raised an exception") or a correct result. The bulk calls the endpoint functions in-process
(fast); a sample goes through gradio_client to the served app, each followed by a good request that
must be served. The run's summary counts the cases ("hostile inputs: N cases across M endpoints")."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from gandemo import registry
from gandemo.imaging import open_image
from gandemo.ui import anomaly, edges2photo, faces, music, superres
from gandemo.ui.basics import session

BOMB_SIDE = 30_000  # a 900-megapixel picture, ~110 KB of PNG


# ---- the hostile files ---------------------------------------------------------------------------------
def _base() -> Image.Image:
    """A 160x120 picture every endpoint can work with: a dark shoe-like blob with a coloured band on
    white (photo_to_edges finds edges in it, the anomaly and upscale tabs take it as it is)."""
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.full((120, 160, 3), 255, np.uint8)
    img[((xx - 80) / 60) ** 2 + ((yy - 70) / 30) ** 2 < 1] = (40, 30, 30)
    img[(yy > 60) & (yy < 66) & (xx > 30) & (xx < 130)] = (200, 40, 40)
    return Image.fromarray(img)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def decompression_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid bilevel PNG of side x side white pixels: ~110 KB on disk, side² pixels decoded."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    z = zlib.compressobj(9)
    block = row * 1000
    data = b"".join(z.compress(block) for _ in range(side // 1000)) + z.compress(row * (side % 1000)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _encoded(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# name -> (what the endpoint must do: "ok", "error" or "either"; how to write the file)
FILES: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "zero-byte": ("error", lambda p: p.write_bytes(b"")),
    "truncated PNG": ("error", lambda p: p.write_bytes(_encoded(_base(), "PNG")[:300])),
    "truncated JPEG": ("error", lambda p: p.write_bytes(_encoded(_base(), "JPEG")[:400])),
    "text renamed .png": ("error", lambda p: p.write_text("this is a shopping list, not a picture\n")),
    "1x1": ("either", lambda p: Image.new("RGB", (1, 1), (10, 20, 30)).save(p)),
    "4000x1 strip": ("either", lambda p: Image.new("RGB", (4000, 1), (10, 20, 30)).save(p)),
    f"{BOMB_SIDE}x{BOMB_SIDE} decompression bomb": ("error", lambda p: p.write_bytes(decompression_bomb())),
    "16-bit greyscale": (
        "ok",
        lambda p: Image.fromarray(np.asarray(_base().convert("L")).astype(np.uint16) * 257).save(p),
    ),
    "CMYK JPEG": ("ok", lambda p: _base().convert("CMYK").save(p, format="JPEG")),
    "palette + transparency": ("ok", lambda p: _base().convert("P").save(p, transparency=0)),
    "animated GIF": (
        "ok",
        lambda p: _base().save(
            p, format="GIF", save_all=True, append_images=[_base().rotate(180)] * 2, duration=100, loop=0
        ),
    ),
    "EXIF-rotated JPEG": ("ok", lambda p: _base().save(p, format="JPEG", exif=_exif_rotated())),
}
NOT_FILES: dict[str, Any] = {"a list": [1, 2], "a number": 7, "a dict without a file": {"x": 1}, "nothing": None}
SUFFIX = {"CMYK JPEG": ".jpg", "EXIF-rotated JPEG": ".jpg", "truncated JPEG": ".jpg", "animated GIF": ".gif"}


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the picture is 120x160 as shown
    return exif.tobytes()


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for i, (name, (_, write)) in enumerate(FILES.items()):
        path = folder / f"case{i}{SUFFIX.get(name, '.png')}"
        write(path)
        paths[name] = path
    paths["good"] = folder / "good.png"
    _base().save(paths["good"])
    return paths


# ---- values for numbers, choices and flags -------------------------------------------------------------
NUMBERS: dict[str, Any] = {
    '"4.0"': "4.0",
    '"1e3"': "1e3",
    "-1": -1,
    "-0.5": -0.5,
    "10**30": 10**30,
    "10**5000": 10**5000,
    "10,000 nines as text": "9" * 10_000,
    '""': "",
    "None": None,
    "[1, 2]": [1, 2],
    "[]": [],
    "{}": {},
    "NaN": float("nan"),
    '"inf"': "inf",
    "True": True,
    '"abc"': "abc",
    "2.5": 2.5,
}
CHOICES: dict[str, Any] = {
    '""': "",
    "None": None,
    "['gan']": ["gan"],
    "5": 5,
    "True": True,
    "a 100 kB string": "x" * 100_000,
}
FLAGS: dict[str, Any] = {'"yes"': "yes", "2": 2, "None": None, "[]": [], '""': "", "0.5": 0.5}
COLOURS: dict[str, Any] = {  # a colour input's values: "automatic" and its spellings are answered, the rest refused
    "None": None,
    '""': "",
    '"Automatic"': "Automatic",
    '"#abc"': "#abc",
    '"rgba(10, 20, 30, 0.5)"': "rgba(10, 20, 30, 0.5)",
    '"red"': "red",
    '"#12345"': "#12345",
    '"#gggggg"': "#gggggg",
    '"rgb(300, 0, 0)"': "rgb(300, 0, 0)",
    '"rgb(nan, 0, 0)"': "rgb(nan, 0, 0)",
    '"rgb(1, 2)"': "rgb(1, 2)",
    "[255, 0, 0]": [255, 0, 0],
    "5": 5,
    "True": True,
    "a 100 kB string": "#" + "f" * 100_000,
}


# ---- one table per endpoint ------------------------------------------------------------------------------
def _size(path: Any) -> tuple[int, int]:
    return Image.open(path).size


def _faces_ok(result: Any, args: tuple) -> None:
    images, grid = result
    assert len(images) == int(float(args[1])) and Path(grid).is_file()


def _walk_ok(result: Any, args: tuple) -> None:
    gif, frames = result
    assert len(frames) == int(float(args[2])) and Image.open(gif).format == "GIF"


def _edges_ok(result: Any, args: tuple) -> None:
    assert result.size == (128, 128)


def _photo_ok(result: Any, args: tuple) -> None:
    edges, photo = result
    assert edges.size == photo.size == (128, 128)


def _upscale_ok(result: Any, args: tuple) -> None:
    image, (bicubic, model), png, table = result
    w, h = open_image(args[0]).size  # after the EXIF rotation
    assert _size(image) == _size(bicubic) == _size(png) == (4 * w, 4 * h)


def _music_ok(result: Any, args: tuple) -> None:
    wav, roll, midi, table, note = result
    assert Path(wav).stat().st_size > 1000 and Path(midi).is_file() and len(table) > 0


def _anomaly_ok(result: Any, args: tuple) -> None:
    overlay, mask, recon, score, verdict, plot, seconds = result
    assert overlay.size == mask.size == open_image(args[0]).size and np.isfinite(score) and verdict


def _baseline_ok(result: Any, args: tuple) -> None:
    overlay, mask, mean, score, verdict = result
    assert overlay.size == mask.size == mean.size == open_image(args[0]).size and np.isfinite(score) and verdict


def _toy_ok(result: Any, args: tuple) -> None:
    plot, text, numbers, state = result
    assert numbers["step"] >= 0 and "Running" in numbers["status"]


FILE_WORDS = r"image|picture|photo|sketch|file|upload|nothing to|edges|pixels"


@dataclass
class Endpoint:
    """An endpoint's hostile-input table: its function, a good request, which argument is a file, a
    number, a choice or a flag (with the word its message must name), and how to check a result."""

    name: str
    fn: Callable[..., Any]
    good: tuple
    ok: Callable[[Any, tuple], None]
    files: tuple[int, ...] = ()
    numbers: dict[int, str] = field(default_factory=dict)
    choices: dict[int, str] = field(default_factory=dict)
    flags: dict[int, str] = field(default_factory=dict)
    colours: dict[int, str] = field(default_factory=dict)


GOOD_FILE = "<good file>"  # replaced by the good picture's path
TOY_1D = ("gaussian", "normal", "non-saturating", 1e-3, 1e-3, 1, 64, 0, 5, 5, None)
TOY_2D = ("ring", "standard", 1e-3, 1e-3, 1, 64, 0, 5, 5, None)
ENDPOINTS = [
    Endpoint(
        "generate_faces", faces.generate_faces, (1, 2, 0.7), _faces_ok, numbers={0: "seed", 1: "count", 2: "truncation"}
    ),
    Endpoint(
        "interpolate_faces",
        faces.interpolate_faces,
        (1, 2, 3, 0.7),
        _walk_ok,
        numbers={0: "seed A", 1: "seed B", 2: "frames", 3: "truncation"},
    ),
    Endpoint("photo_to_edges", edges2photo.photo_to_edges, (GOOD_FILE,), _edges_ok, files=(0,)),
    Endpoint(
        "edges_to_photo",
        edges2photo.edges_to_photo,
        (GOOD_FILE, "#8b1a1a"),
        _photo_ok,
        files=(0,),
        colours={1: "colour"},
    ),
    Endpoint(
        "upscale",
        superres.upscale,
        (GOOD_FILE, "gan", False),
        _upscale_ok,
        files=(0,),
        choices={1: "variant"},
        flags={2: "check_quality"},
    ),
    Endpoint(
        "compose_music",
        music.compose_music,
        (1, 80, 0, 0, 0, 0, False, False, False, False),
        _music_ok,
        numbers={0: "seed", 1: "tempo", 2: "soprano instrument"},
        flags={6: "mute soprano"},
    ),
    Endpoint(  # its MIDI file (optional, so None is no error) is refused in tests/ui/test_music_ui.py
        "harmonize_melody",
        music.harmonize_melody,
        (None, "", "Ode to Joy (Beethoven, 1824)", 90, 40, 40, 41, 42, 0),
        _music_ok,
        numbers={3: "tempo", 4: "soprano instrument", 8: "seed"},
        choices={1: "melody text", 2: "example"},
    ),
    Endpoint(
        "detect_anomaly",
        anomaly.detect_anomaly,
        (GOOD_FILE, "transistor", "encoder", 3),
        _anomaly_ok,
        files=(0,),
        choices={1: "category", 2: "method"},
        numbers={3: "iterations"},
    ),
    Endpoint(
        "compare_baseline",
        anomaly.compare_baseline,
        (GOOD_FILE, "transistor"),
        _baseline_ok,
        files=(0,),
        choices={1: "category"},
    ),
    Endpoint(
        "toy_gan",
        session.toy_gan,
        TOY_1D,
        _toy_ok,
        choices={0: "distribution", 1: "noise", 2: "loss"},
        numbers={3: "learning rate of D", 5: "k", 6: "batch size", 7: "seed", 8: "steps", 9: "steps per plot update"},
    ),
    Endpoint(
        "toy_gan_2d",
        session.toy_gan_2d,
        TOY_2D,
        _toy_ok,
        choices={0: "dataset", 1: "loss"},
        numbers={2: "learning rate of D", 4: "k", 5: "batch size", 6: "seed", 7: "steps"},
    ),
]


@dataclass(frozen=True)
class Case:
    endpoint: Endpoint
    position: int
    kind: str  # file, not-a-file, number, choice, flag
    label: str  # the case's name in the table
    value: Any
    expect: str  # ok, error, either
    words: str  # a regex the message must match

    @property
    def id(self) -> str:
        return f"{self.endpoint.name}-{self.words.split('|')[0]}-{self.label}"


def _cases() -> list[Case]:
    cases = []
    for ep in ENDPOINTS:
        for pos in ep.files:
            for name, (expect, _) in FILES.items():
                cases.append(Case(ep, pos, "file", name, name, expect, FILE_WORDS))
            for name, value in NOT_FILES.items():
                cases.append(Case(ep, pos, "not-a-file", name, value, "error", FILE_WORDS))
        for kind, table, values in (
            ("number", ep.numbers, NUMBERS),
            ("choice", ep.choices, CHOICES),
            ("colour", ep.colours, COLOURS),
        ):
            for pos, word in table.items():
                for name, value in values.items():
                    cases.append(Case(ep, pos, kind, name, value, "either", re.escape(word)))
        for pos, word in ep.flags.items():
            for name, value in FLAGS.items():
                cases.append(Case(ep, pos, "flag", name, value, "error", re.escape(word)))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def tiny_models(checkpoint_root: Path):
    mp = pytest.MonkeyPatch()
    mp.setenv(registry.ENV_ROOT, str(checkpoint_root))
    registry.clear()
    yield
    mp.undo()
    registry.clear()


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    result = fn(*args)
    if hasattr(result, "__next__"):  # a streaming endpoint: its checks run before the first frame
        try:
            return next(result)
        finally:
            result.close()
    return result


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_hostile_input_gets_the_apps_own_message_or_a_correct_result(
    case: Case, hostile_files: dict[str, Path], tiny_models, run_report
):
    ep = case.endpoint
    args = [str(hostile_files["good"]) if a == GOOD_FILE else a for a in ep.good]
    args[case.position] = str(hostile_files[case.value]) if case.kind == "file" else case.value
    args = tuple(args)
    try:
        result = _call(ep.fn, args)
    except gr.Error as exc:  # the endpoint guard's plain message; any other exception fails the test
        message = str(exc.message)
        assert case.expect != "ok", f"refused a usable input: {message}"
        assert re.search(case.words, message, re.IGNORECASE), f"the message does not say what was wrong: {message}"
        assert len(message) < 400 and "upstream" not in message and "Traceback" not in message
        outcome = "message"
    else:
        assert case.expect != "error", "accepted an input that must be refused"
        ep.ok(result, args)
        outcome = "result"
    run_report["hostile"].append((ep.name, case.words, case.label, outcome))


def test_every_endpoint_of_the_app_has_a_hostile_table(tiny_models):
    from gandemo.ui.app import build_app

    demo = build_app()
    public = {fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility == "public"}
    assert public == {ep.name for ep in ENDPOINTS}


# ---- a sample through gradio_client, each followed by a good request ------------------------------------
@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _file(hostile_files: dict[str, Path], name: str) -> Any:
    return handle_file(str(hostile_files[name]))


SAMPLE = [  # (api, arguments with "FILE:<name>" for a hostile file, "ok" or the words of the message)
    ("/generate_faces", ("1e3", "4.0"), "ok"),
    ("/generate_faces", (None, 2), "seed must be a whole number"),
    ("/generate_faces", ([1, 2], 2), "seed must be a whole number"),
    ("/interpolate_faces", (1, 2, -5), "frames must be from 2 to 60"),
    ("/generate_faces", (1, 2, "0.5"), "ok"),
    ("/generate_faces", (1, 2, 1.5), "truncation psi must be a number from 0 to 1"),
    ("/interpolate_faces", (1, 2, 3, "abc"), "truncation psi must be a number from 0 to 1"),
    ("/photo_to_edges", ("FILE:zero-byte",), "not a readable image"),
    ("/photo_to_edges", ("FILE:text renamed .png",), "not a readable image"),
    ("/edges_to_photo", (f"FILE:{BOMB_SIDE}x{BOMB_SIDE} decompression bomb",), "too large"),
    ("/edges_to_photo", ("FILE:CMYK JPEG",), "ok"),
    ("/edges_to_photo", ("FILE:good", "#8B1A1A"), "ok"),
    ("/edges_to_photo", ("FILE:good", "burgundy"), "the colour must be"),
    ("/edges_to_photo", ("FILE:good", [139, 26, 26]), "the colour must be"),
    ("/upscale", ("FILE:truncated PNG", "gan", False), "not a readable image"),
    ("/upscale", ("FILE:EXIF-rotated JPEG", "gan", False), "ok"),
    ("/upscale", ("/etc/hostname", "gan", False), "must be an uploaded file"),
    ("/upscale", ([1, 2], "gan", False), "must be an uploaded file"),
    ("/upscale", ("FILE:palette + transparency", None, False), "variant must be one of"),
    ("/compose_music", (1, "1e3"), "tempo"),
    ("/compose_music", (1, 80, [0]), "soprano instrument"),
    ("/harmonize_melody", ("/etc/hostname", "C4/4"), "must be an uploaded file"),
    ("/harmonize_melody", ("FILE:text renamed .png", "C4/4"), "not a MIDI file"),
    ("/harmonize_melody", (None, "C4/4 Q4/4"), "could not read note 2"),
    ("/detect_anomaly", ("FILE:animated GIF", "transistor", "encoder", "4.0"), "ok"),
    ("/detect_anomaly", ("FILE:1x1", "transistor", "encoder", 3), "at least 16x16"),
    ("/detect_anomaly", ("FILE:16-bit greyscale", "transistor", "latent_search", 10**30), "iterations must be from"),
    ("/detect_anomaly", ("FILE:good", "transistor", "inpaint", 3), "ok"),
    ("/compare_baseline", ("FILE:zero-byte", "transistor"), "not a readable image"),
    ("/compare_baseline", ("FILE:good", "teapot"), "category must be one of"),
    ("/toy_gan", ("gaussian", "normal", "non-saturating", "abc", 1e-3, 1, 64, 0, 5, 5), "learning rate of D"),
    ("/toy_gan_2d", ("ring", "standard", 1e-3, 1e-3, None, 64, 0, 5, 5), "k \\(D steps per G step\\)"),
]
GOOD_REQUEST = {
    "/generate_faces": (3, 1),
    "/interpolate_faces": (1, 2, 2),
    "/photo_to_edges": ("FILE:good",),
    "/edges_to_photo": ("FILE:good",),
    "/upscale": ("FILE:good", "psnr", False),
    "/compose_music": (5, 90),
    "/harmonize_melody": (None, "C5/2 D5/2"),
    "/detect_anomaly": ("FILE:good", "metal_plate", "encoder", 3),
    "/compare_baseline": ("FILE:good", "magnetic_tile"),
    "/toy_gan": TOY_1D[:-1],
    "/toy_gan_2d": TOY_2D[:-1],
}


def _args(hostile_files: dict[str, Path], args: tuple) -> tuple:
    return tuple(_file(hostile_files, a[5:]) if isinstance(a, str) and a.startswith("FILE:") else a for a in args)


@pytest.mark.parametrize("api, args, expect", SAMPLE, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(SAMPLE)])
def test_a_sample_through_the_api_gets_plain_answers_and_the_next_request_is_served(
    client: Client, hostile_files: dict[str, Path], api: str, args: tuple, expect: str
):
    if expect == "ok":
        client.predict(*_args(hostile_files, args), api_name=api)
    else:
        with pytest.raises(Exception, match=expect) as err:
            client.predict(*_args(hostile_files, args), api_name=api)
        assert "upstream" not in str(err.value)
    assert client.predict(*_args(hostile_files, GOOD_REQUEST[api]), api_name=api) is not None


def _rest(app_url: str, api: str, data: list) -> tuple[str, str]:
    """Call an endpoint over Gradio's REST API as any HTTP client may: (event kind, its data)."""
    import json

    import httpx

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


@pytest.mark.parametrize(
    "api, data, words",
    [
        (
            "generate_faces",
            [1],
            "generate_faces takes 2 to 3 inputs (Seed, How many faces, Truncation ψ); the request sent 1",
        ),
        ("upscale", [], "upscale takes 3 inputs"),
        ("edges_to_photo", [], "edges_to_photo takes 1 to 2 inputs"),
        ("upscale", [{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}, "gan", False], "be uploaded"),
        ("detect_anomaly", ["/etc/hostname", "transistor", "encoder", 3], "must be an uploaded file"),
        ("compare_baseline", ["/etc/hostname", "transistor"], "must be an uploaded file"),
    ],
)
def test_requests_gradio_cannot_hand_to_a_handler_get_plain_words_too(app_url: str, api, data, words):
    kind, answer = _rest(app_url, api, data)
    assert kind == "error" and words in answer["error"]
    assert _rest(app_url, "generate_faces", [1, 1])[0] == "complete"
