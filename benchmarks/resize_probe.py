"""One resize approach in a process of its own, so its peak RSS is its own:

    python -m benchmarks.resize_probe handler|pillow|pyvips INPUT IMAGES

Reads INPUT, makes an 800 px wide JPEG q85 from it once to warm up and then IMAGES times,
and prints JSON: ms per image, RSS after the imports (MiB) and the process's peak RSS."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.procmem import peak_rss_mb, rss_mb

WIDTH = 800
QUALITY = 85
Approach = Callable[[Path, Path], None]


def handler(source: Path, folder: Path) -> Approach:
    """The resizer's handler on a real folder blob store; a new job (and output) each time."""
    from services.resizer.handler import resize_job
    from shared.blobs import FolderBlobStore, input_key
    from shared.config import Settings
    from shared.jobtypes.resize import ResizeLimits
    from shared.messages import Job

    store = FolderBlobStore(folder / "blobs")
    limits = ResizeLimits.from_settings(Settings())
    key = store.write_bytes(input_key("bench-input", source.name), source.read_bytes())
    params = {"width": WIDTH, "format": "jpeg", "quality": QUALITY}

    def run(_source: Path, _out: Path) -> None:
        resize_job(Job(type="resize", params=params, inputs=[key]), store, limits)

    return run


def pillow(_source: Path, _folder: Path) -> Approach:
    """What most code does: open, resize the full picture with LANCZOS, save."""
    from PIL import Image

    def run(source: Path, out: Path) -> None:
        with Image.open(source) as im:
            height = round(im.height * WIDTH / im.width)
            im.convert("RGB").resize((WIDTH, height), Image.Resampling.LANCZOS).save(
                out, "JPEG", quality=QUALITY
            )

    return run


def pyvips(_source: Path, _folder: Path) -> Approach:
    """libvips' thumbnail: shrink-on-load, then a reduce; its own thread pool."""
    import pyvips as vips

    def run(source: Path, out: Path) -> None:
        vips.Image.thumbnail(str(source), WIDTH).jpegsave(str(out), Q=QUALITY)

    return run


APPROACHES: dict[str, Callable[[Path, Path], Approach]] = {
    "handler": handler,
    "pillow": pillow,
    "pyvips": pyvips,
}


def main(approach: str, source: Path, images: int) -> dict[str, object]:
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = APPROACHES[approach](source, folder)
        base = rss_mb()
        out = folder / "out.jpg"
        run(source, out)  # warm up: codecs loaded, first allocations made
        ms = []
        for _ in range(images):
            started = time.perf_counter()
            run(source, out)
            ms.append((time.perf_counter() - started) * 1000)
        return {"ms": ms, "base_mb": base, "peak_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))))
