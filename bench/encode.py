"""Encoding benchmark: the project's streaming encoder against two baselines, in one run.

    python bench/encode.py                 # 121 frames of 768x512, 3 rounds, RSS for 121 vs 481

The same frames (a moving synthetic landscape: sky, sun, parallax hills, rippling water, a
boat; smooth, not noise) are encoded three ways with identical x264 settings (crf 20, preset
veryfast, yuv420p, +faststart):

1. `gpu.encode.encode_mp4`, the project's encoder (frames streamed into libx264, in-process);
2. the naive flow: every frame written as a PNG file, then the `ffmpeg` CLI run on them;
3. a bare PyAV libx264 loop, the least any in-process encoder can do.

Each leg runs `--rounds` times (default 5), alternating order; the median wall time counts. Frames are made
before timing so that all legs get the same input at no cost. Peak memory is measured in fresh
subprocesses that make frames one at a time and stream them through the project's encoder,
for 121 and for 481 frames: it should not grow with the frame count.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu.encode import encode_mp4  # noqa: E402

FPS = 24
CRF = 20
PRESET = "veryfast"


class Scene:
    """A landscape the camera pans across; every frame differs, like real video."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        pano_w = width * 3
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
        x = np.arange(pano_w, dtype=np.float32)[None, :]
        sky = np.stack([70 + 120 * y, 120 + 90 * y, 200 + 30 * y], axis=-1) * np.ones(
            (1, pano_w, 1), np.float32
        )
        pano = sky
        for depth, (colour, base, amp, freq) in enumerate(
            [((90, 110, 140), 0.45, 0.08, 0.004), ((60, 120, 70), 0.55, 0.06, 0.009)]
        ):
            ridge = base + amp * (np.sin(x * freq + depth) + 0.5 * np.sin(x * freq * 2.7 + 1.3))
            mask = (y > ridge)[..., None]
            shade = 0.85 + 0.15 * np.sin(x * 0.05 + y * 40)[..., None]
            pano = np.where(mask, np.array(colour, np.float32) * shade, pano)
        self.pano = pano.astype(np.float32)
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.water = self.yy > height * 0.72

    def frame(self, i: int) -> np.ndarray:
        t = i / FPS
        offset = int(40 * t * 2) % (self.pano.shape[1] - self.w)
        img = self.pano[:, offset : offset + self.w].copy()
        sun_x, sun_y = self.w * (0.2 + 0.02 * t), self.h * (0.25 - 0.01 * t)
        sun = np.exp(-(((self.xx - sun_x) ** 2 + (self.yy - sun_y) ** 2) / (2 * 30.0**2)))
        img += sun[..., None] * np.array([120, 100, 40], np.float32)
        ripple = 0.5 + 0.5 * np.sin(self.xx * 0.08 + self.yy * 0.5 - t * 6)
        water = np.stack([30 + 40 * ripple, 70 + 50 * ripple, 120 + 60 * ripple], -1)
        img = np.where(self.water[..., None], water, img)
        bx, by = self.w * (0.1 + 0.12 * t) % self.w, self.h * 0.74 + 4 * np.sin(t * 3)
        hull = (np.abs(self.xx - bx) < 40) & (self.yy > by) & (self.yy < by + 14)
        sail = (self.xx > bx - 2) & (self.xx < bx + 28 - (by - self.yy) * 0.5) & (self.yy < by)
        sail &= self.yy > by - 56
        img[hull] = (90, 50, 30)
        img[sail] = (240, 235, 220)
        return np.clip(img, 0, 255).astype(np.uint8)

    def frames(self, n: int) -> Iterator[np.ndarray]:
        for i in range(n):
            yield self.frame(i)


def run_project(frames: list[np.ndarray], out: Path) -> None:
    encode_mp4(iter(frames), FPS, out, crf=CRF, preset=PRESET)


def run_bare_pyav(frames: list[np.ndarray], out: Path) -> None:
    container = av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"})
    stream = container.add_stream("libx264", rate=Fraction(FPS))
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    stream.codec_context.options = {"crf": str(CRF), "preset": PRESET}
    for frame in frames:
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode(None))
    container.close()


def run_png_ffmpeg(frames: list[np.ndarray], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-png-") as tmp:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(Path(tmp) / f"{i:05d}.png")
        subprocess.run(
            [
                "ffmpeg", "-y", "-loglevel", "error",
                "-framerate", str(FPS), "-i", str(Path(tmp) / "%05d.png"),
                "-c:v", "libx264", "-crf", str(CRF), "-preset", PRESET,
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out),
            ],
            check=True,
        )  # fmt: skip


def count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _peak_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: on Linux, ru_maxrss of an exec'd child
    starts from its parent's RSS at fork time, which would hide the child's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_rss_child(frames: int, width: int, height: int) -> None:
    """Child process: stream `frames` generated frames through the project encoder."""
    scene = Scene(width, height)
    with tempfile.TemporaryDirectory() as tmp:
        before = _peak_mb()
        result = encode_mp4(scene.frames(frames), FPS, Path(tmp) / "o.mp4", crf=CRF, preset=PRESET)
        peak = _peak_mb()
    print(json.dumps({"frames": result.frames, "rss_before_mb": before, "peak_rss_mb": peak}))


def peak_rss(frames: int, width: int, height: int) -> dict:
    cmd = [sys.executable, __file__, "--child-rss", str(frames), "--width", str(width)]
    cmd += ["--height", str(height)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--long", type=int, default=481, help="frames for the second RSS run")
    parser.add_argument("--no-rss", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        peak_rss_child(args.child_rss, args.width, args.height)
        return 0

    scene = Scene(args.width, args.height)
    frames = list(scene.frames(args.frames))
    legs = {"project": run_project, "bare_pyav": run_bare_pyav}
    if shutil.which("ffmpeg"):
        legs["png_ffmpeg"] = run_png_ffmpeg
    else:
        print("ffmpeg CLI not found: skipping the PNG + ffmpeg leg (apt-get install ffmpeg)")
    times: dict[str, list[float]] = {name: [] for name in legs}
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        run_project(frames[:8], Path(tmp) / "warmup.mp4")  # load codecs once, outside timing
        for r in range(args.rounds):
            order = list(legs) if r % 2 == 0 else list(reversed(legs))
            for name in order:
                out = Path(tmp) / f"{name}-{r}.mp4"
                start = time.perf_counter()
                legs[name](frames, out)
                times[name].append(time.perf_counter() - start)
                if r == 0:
                    got = count_frames(out)
                    assert got == args.frames, f"{name} wrote {got} frames, not {args.frames}"
                    print(f"{name:>11}: {out.stat().st_size / 1024:8.0f} KiB", end="")
                    print(f"  {times[name][-1]:6.3f} s (round 1)")
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(
            f"{name:>11}: median {value:6.3f} s = {args.frames / value:6.1f} fps "
            f"(rounds: {', '.join(f'{v:.3f}' for v in times[name])})"
        )
    result: dict = {
        "frames": args.frames,
        "size": f"{args.width}x{args.height}",
        "project_s": round(median["project"], 3),
        "bare_pyav_s": round(median["bare_pyav"], 3),
        "png_ffmpeg_s": round(median["png_ffmpeg"], 3) if "png_ffmpeg" in median else None,
        "speedup_vs_png_ffmpeg": (
            round(median["png_ffmpeg"] / median["project"], 2) if "png_ffmpeg" in median else None
        ),
        "ratio_vs_bare_pyav": round(median["project"] / median["bare_pyav"], 3),
    }
    if not args.no_rss:
        short = peak_rss(args.frames, args.width, args.height)
        long = peak_rss(args.long, args.width, args.height)
        print(
            f"peak RSS: {short['peak_rss_mb']:.0f} MB for {short['frames']} frames, "
            f"{long['peak_rss_mb']:.0f} MB for {long['frames']} frames "
            f"(after imports: {short['rss_before_mb']:.0f} MB)"
        )
        result[f"peak_rss_mb_{args.frames}"] = round(short["peak_rss_mb"], 1)
        result[f"peak_rss_mb_{args.long}"] = round(long["peak_rss_mb"], 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
