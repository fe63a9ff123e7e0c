"""4x Upscale speed and memory, in one run: the generator on 128x128 and 256x256 inputs in several
numeric set-ups against a plain eager fp32 NCHW run of the same network, bicubic beside it, the
app's tiled path, and the peak memory of upscaling a 2000x2000 picture.

The model is --checkpoint, else the shipped superres/gan checkpoint if there is one, else an
UNTRAINED SRResNet of the cpu preset's size (an untrained network costs what a trained one does;
the table says which). Set-ups, each the median of --repeats calls after a warm-up:
  eager fp32 NCHW          the reference: G(x) under inference_mode, weights and input NCHW
  eager fp32 channels_last weights and input in oneDNN's preferred layout (what the registry loads)
  torch.compile            inductor on the CPU, channels_last (compile time reported apart; skipped
                           with --no-compile, reported as failed if it does not work here)
  bf16 autocast            only where the CPU has native bf16 (AVX512-BF16/AMX), or with --try-bf16
  N threads                the channels_last run with --threads-alt threads instead of --threads
  app path                 gandemo.tasks.superres.upscale_array: tiles, blending, uint8 in and out
  bicubic                  PIL's bicubic 4x of the same picture
Peak RSS: a fresh Python process decodes a --big x --big PNG, upscales it with `upscale` (the app's
function: model, bicubic, alpha handling) and reports its own VmHWM, with its RSS before the
upscale for reference. That run takes minutes on a CPU (about 4 M input pixels); --big 0 skips it.

    .venv/bin/python benchmarks/superres_speed.py [--checkpoint DIR] [--threads 1] [--threads-alt 2]
        [--repeats 5] [--big 2000] [--no-compile] [--try-bf16]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks._server import median_seconds  # noqa: E402
from benchmarks.tasks.superres import save_superres, superres_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_picture(size: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 (size, size, 3) picture: gradients, discs, lines, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([60 + 150 * xx, 80 + 120 * yy, 200 - 100 * xx * yy], axis=2)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, 1, 3) * (1, 1, 0.15)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.uniform(0, 255, 3)
    img[:, :: max(1, size // 16)] *= 0.5
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def as_input(picture: np.ndarray, channels_last: bool) -> torch.Tensor:
    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).contiguous()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def peak_rss(folder: Path | None, size: int, threads: int) -> dict[str, float]:
    """Upscale a size x size PNG in a fresh process with the app's `upscale`; its memory in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "big.png"
        Image.fromarray(test_picture(size)).save(png)
        if folder is None:  # the untrained stand-in, written where the child can load it
            folder = Path(tmp) / "superres" / "gan"
            save_superres(superres_model(None)[0], folder, "gan")
        child = f"""
import json, sys, time, torch
sys.path.insert(0, {str(ROOT)!r})
torch.set_num_threads({threads})
from gandemo.checkpoint import load_checkpoint
from gandemo.tasks import superres
def status(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
G = load_checkpoint({str(folder)!r})['G'].to(memory_format=torch.channels_last)
before = status('VmRSS')
t0 = time.perf_counter()
out = superres.upscale(G, {str(png)!r})
seconds = time.perf_counter() - t0
print(json.dumps({{'before_mb': before, 'peak_mb': status('VmHWM'), 'seconds': seconds, 'size': list(out.image.size)}}))
"""
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, help="a superres checkpoint folder (default: the shipped gan one)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the app's default: 1)")
    p.add_argument("--threads-alt", type=int, default=2, help="the other thread count to time")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="input sides to time")
    p.add_argument("--big", type=int, default=2000, help="side of the peak-memory run (0: skip it)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    p.add_argument("--try-bf16", action="store_true", help="also time bf16 autocast where it is emulated")
    args = p.parse_args()

    from gandemo.tasks import superres
    from training.loop import cpu_has_fast_bf16

    torch.set_num_threads(args.threads)
    G, what, folder = superres_model(args.checkpoint)
    nchw = G
    cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
    native_bf16 = cpu_has_fast_bf16()
    compiled, compile_note = None, ""
    if args.compile:
        try:
            t0 = time.perf_counter()
            compiled = torch.compile(copy.deepcopy(cl))
            with torch.inference_mode():
                compiled(as_input(test_picture(args.sizes[0]), True))
            compile_note = f"compiled in {time.perf_counter() - t0:.0f} s"
        except Exception as exc:  # noqa: BLE001 - any failure is a result to report, not a crash
            compiled, compile_note = None, f"torch.compile failed here: {type(exc).__name__}: {str(exc)[:120]}"

    def timed(model: torch.nn.Module, x: torch.Tensor, bf16: bool = False) -> float:
        def call() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)

        return median_seconds(call, args.repeats)

    rows: list[tuple[str, str, float, float]] = []  # (input, set-up, seconds, reference seconds)
    for size in args.sizes:
        picture = test_picture(size)
        label = f"{size}×{size} → {4 * size}×{4 * size}"
        ref = timed(nchw, as_input(picture, False))
        rows.append((label, "eager fp32 NCHW (reference)", ref, ref))
        rows.append((label, "eager fp32 channels_last", timed(cl, as_input(picture, True)), ref))
        if compiled is not None:
            rows.append((label, "torch.compile, channels_last", timed(compiled, as_input(picture, True)), ref))
        if native_bf16 or args.try_bf16:
            note = "" if native_bf16 else " (emulated)"
            rows.append((label, f"bf16 autocast, channels_last{note}", timed(cl, as_input(picture, True), True), ref))
        torch.set_num_threads(args.threads_alt)
        alt = timed(cl, as_input(picture, True))
        rows.append((label, f"eager fp32 channels_last, {args.threads_alt} threads", alt, ref))
        torch.set_num_threads(args.threads)
        app = median_seconds(lambda picture=picture: superres.upscale_array(cl, picture), args.repeats)
        rows.append((label, "app path: upscale_array (tiles, uint8 in/out)", app, ref))
        bic = median_seconds(lambda picture=picture: superres.bicubic_array(picture), args.repeats)
        rows.append((label, "bicubic (PIL)", bic, ref))

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    print(
        f"\n4× Upscale speed — {cpu}, {args.threads} thread(s), native bf16: {native_bf16}, torch {torch.__version__}"
    )
    print(f"model: {what}")
    if compile_note:
        print(compile_note)
    print("\n| input | set-up | time | vs eager fp32 NCHW |\n|---|---|---|---|")
    for label, setup, s, ref in rows:
        print(f"| {label} | {setup} | {s * 1000:.0f} ms | {s / ref:.2f}× |")
    if not (native_bf16 or args.try_bf16):
        print("\nbf16 is not native on this CPU (no AVX512-BF16/AMX flag): not timed (emulated, far slower).")
    if args.big:
        print(f"\nPeak memory upscaling a {args.big}×{args.big} PNG in a fresh process ({args.threads} thread(s)) ...")
        m = peak_rss(folder, args.big, args.threads)
        print(
            f"| {args.big}×{args.big} → {m['size'][0]}×{m['size'][1]} | RSS before {m['before_mb']:.0f} MB | "
            f"peak {m['peak_mb']:.0f} MB | {m['seconds']:.0f} s |"
        )
    print(
        f"\ntiles: {superres.TILE} px, overlap {superres.OVERLAP}, context {superres.CONTEXT}; "
        f"cap {superres.MAX_INPUT_PIXELS / 1e6:.1f} MP in"
    )


if __name__ == "__main__":
    main()
