"""What the robustness tests share: tiny settings per pipeline, pinned free memory, one built
engine per model and objective (`shared_engine`), `refused()` (one line, exit 2, nothing
written), and makers of broken or unusual input files."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from media_probe import make_clip

from pipelines.cli import main
from pipelines.outputs import sidecar_path
from pipelines.sequence.checkpoints import work_dir_for
from render.media.image import default_image, write_image

ROOT = Path(__file__).resolve().parent.parent
TINY = ("model.name=efficientnet_lite0", "model.weights=none", "dream.octaves=1",
        "dream.steps=1")
SEQ = (*TINY, "dream.first_frame.octaves=1", "dream.first_frame.steps=1")
FAST = {  # the tiniest settings of each pipeline
    "still": (*TINY, "size=[32,24]"),
    "layers": (*TINY, "size=[32,24]", "model.layers=[block1,block2]"),
    "zoom": (*SEQ, "size=[32,24]", "frames=2", "fps=10", "motion.zoom=1.05"),
    "video": (*SEQ, "max_size=[32,24]", "flow.method=static", "frames=3"),
}
EXT = {"still": ".png", "layers": ".png", "zoom": ".mp4", "video": ".mp4"}
FREE_MEMORY = 8 << 30  # what the memory estimate is told is free, so results do not vary




def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under `directory`: size, mtime and mode (so any change shows)."""
    out = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def render_argv(preset: str, overrides: list[str], tmp: Path) -> tuple[list[str], list[Path]]:
    """CLI arguments for a tiny render of `preset` (a shipped name, or a preset file for the
    still pipeline), and the output paths it names (out<ext> in `tmp` unless given)."""
    pipeline = preset if preset in FAST else "still"
    outs = [o for o in overrides if o.startswith("output=")]
    if not outs:
        overrides = [*overrides, f"output={tmp / ('out' + EXT[pipeline])}"]
        outs = overrides[-1:]
    paths = [Path(p.strip()) for o in outs for p in o[7:].strip("[]").split(",")]
    return ["render", preset, *FAST[pipeline], *overrides, "--quiet"], paths


def refused(capfd, tmp: Path, preset: str, overrides: list[str], says: str) -> str:
    """Render and assert the bad-input contract: exit code 2, exactly one line on stderr that
    contains `says`, no traceback, nothing on stdout, and nothing in `tmp` created or
    changed — in particular no output, no sidecar and no work dir under the output name."""
    argv, outs = render_argv(preset, overrides, tmp)
    existed = {p: p.exists() for o in outs for p in (o, sidecar_path(o), work_dir_for(o))}
    before = snapshot(tmp)
    code = main(argv)
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("dreamreel: error: "), captured.err
    assert says in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert snapshot(tmp) == before
    assert {p: p.exists() for p in existed} == existed
    return lines[0]


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG file whose header claims `width` x `height` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                        zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image(tmp: Path, name: str = "in.png", size: tuple[int, int] = (40, 30)) -> Path:
    return write_image(tmp / name, default_image(size, seed=2))


def cut(path: Path, keep: float = 0.5) -> Path:
    """Truncate `path` to a share of its bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def made(path: Path, data: bytes | str = b"") -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def linked(target: Path, link: Path, how: Callable[[Path, Path], None]) -> Path:
    """`link` made to `target` by `how` (os.symlink or os.link)."""
    how(target, link)
    return link


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def clip(tmp: Path, name: str = "in.mp4", **kw) -> Path:
    return make_clip(tmp / name, **{"seconds": 0.4, "fps": 25, "size": "48x32", **kw})


