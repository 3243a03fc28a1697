"""Benchmark (not a test): peak and remaining memory of photo checks under concurrent requests (review24 #4).

    .venv/bin/python scripts/bench/photo_memory.py [--requests 4] [--photos 10] [--edge 7000]

Makes ``--photos`` distinct ``--edge``×``--edge`` RGBA PNGs (about 190 KB each at 7000: 49 MP, just under
``MAX_PIXELS``, 196 MB decoded), then runs ``--requests`` requests at once, each checking all of them as the
report, action and component photo routes do (``check_pixel_budget``, then ``inspect_photo`` per photo). Each
scenario runs in a fresh process and prints its peak RSS (``ru_maxrss``) and the RSS left when all are done:

- ``unlimited``: no pixel budget, no decode slots, no heap trim — the code before the fix;
- ``limited``: as shipped — the budget refuses each request at the photo that crosses ``MAX_REQUEST_PIXELS``
  before decoding any;
- ``limited, within budget``: as shipped, each request sending only the photos the budget lets through, so every
  photo is decoded — what the decode slots (``DECODE_SLOTS``) and the heap trim after each decode bound.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make_photos(folder: Path, n: int, edge: int) -> list[Path]:
    from PIL import Image

    paths = []
    for i in range(n):
        im = Image.new("RGBA", (edge, edge), (i * 20 % 256, 80, 40, 255))
        im.putpixel((i, i), (255, 255, 255, 0))  # distinct files: a repeated one is checked once
        path = folder / f"p{i}.png"
        im.save(path, optimize=False, compress_level=9)
        paths.append(path)
    return paths


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmHWM``: its peak — per process image, unlike ``ru_maxrss``, which a
    child started with fork and exec inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_scenario(folder: Path, scenario: str, requests: int, photos: int) -> dict[str, object]:
    from gisgrid import photos as ph
    from gisgrid.errors import InvalidInput

    files = [(p.name, p.read_bytes()) for p in sorted(folder.glob("p*.png"))][:photos]
    if scenario == "unlimited":
        ph.MAX_REQUEST_PIXELS = 10**12
        ph._DECODING = threading.BoundedSemaphore(10**6)
        ph._MALLOC_TRIM = None
    elif scenario == "within":
        per_photo = ph.declared_pixels(files[0][1])
        files = files[: max(1, ph.MAX_REQUEST_PIXELS // per_photo)]
    before = rss_mb()
    outcomes: list[str] = []

    def one_request() -> None:
        try:
            ph.check_pixel_budget(files)
            for name, data in files:
                ph.inspect_photo(data, filename=name)
            outcomes.append(f"accepted {len(files)}")
        except InvalidInput as exc:
            outcomes.append(f"refused {exc.reason}: {exc.message[:60]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=one_request) for _ in range(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "scenario": scenario,
        "photos per request": len(files),
        "rss before MB": round(before),
        "peak rss MB": round(rss_mb("VmHWM")),
        "rss after MB": round(rss_mb()),
        "seconds": round(time.perf_counter() - start, 1),
        "decode slots": ph.DECODE_SLOTS if scenario != "unlimited" else "unlimited",
        "outcomes": sorted(set(outcomes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--edge", type=int, default=7000)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:  # a child: one scenario in a fresh process
        print(json.dumps(run_scenario(Path(args.folder), args.scenario, args.requests, args.photos)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        made = make_photos(Path(tmp), args.photos, args.edge)
        print(f"{len(made)} PNGs of {args.edge}×{args.edge} RGBA, {made[0].stat().st_size / 1024:.0f} KB each")
        for scenario in ("unlimited", "limited", "within"):
            child = ["--scenario", scenario, "--folder", tmp, "--requests", str(args.requests)]
            out = subprocess.run(
                [sys.executable, __file__, *child, "--photos", str(args.photos)],
                capture_output=True,
                text=True,
                check=True,
            )
            print(out.stdout.strip())


if __name__ == "__main__":
    main()
