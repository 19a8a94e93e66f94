"""Command line: `python -m pipelines render PRESET [key=value ...]` (also `dreamreel`).

Exit codes: 0 done, 2 bad input or a failed read/write (one line, no traceback unless --debug),
3 some inputs of a batch failed (one line each, the others written),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 1 a bug (one line asking for --debug). Both
interruptions keep every finished frame of a sequence.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from render.errors import ConfigError, UserError, os_reason
from render.notify import stderr_notify


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other input error."""

    def error(self, message: str) -> NoReturn:
        print(f"dreamreel: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same clean-up runs."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the clean-up
    raise Terminated


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dreamreel", description="DeepDream stills, zooms, videos and GIFs.")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a preset")
    render.add_argument("preset", help="preset name (pipelines/presets/) or a path to a YAML file")
    render.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted-key overrides, e.g. dream.steps=5 size=[320,180]")
    render.add_argument("--force", action="store_true", help="re-render from scratch")
    render.add_argument("--reuse-frames", action="store_true",
                        help="resume from checkpoints even if the preset changed since")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.add_argument("--debug", action="store_true", help="show tracebacks")
    render.add_argument("--octaves", metavar="DIR",
                        help="still: write each octave's image to DIR as it finishes "
                             "(octave_N.png), to watch it dream")
    render.add_argument("--preview", action="store_true",
                        help="zoom/video: only a fast draft of the camera path (no dreaming, "
                        "with the soundtrack) and a plot of every scheduled value")
    sub.add_parser("list", help="list the available presets")
    keys = sub.add_parser("keys", help="the keys a preset may set: type, default, allowed "
                          "values, pipelines, meaning")
    keys.add_argument("pipeline", nargs="?", help="only this pipeline's keys")
    keys.add_argument("--json", action="store_true",
                      help="the pipeline's JSON Schema (for editors and web forms)")
    studio = sub.add_parser("studio", help="the studio: the whole tool in a local web page")
    studio.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    studio.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    studio.add_argument("--root", default="out/studio",
                        help="the studio's folder: uploads, renders, their YAML (default "
                             "out/studio)")
    return parser


def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipelines.config import presets
    from pipelines.config.settings import SequenceSettings
    from pipelines.registry import runner
    from pipelines.run_options import RunOptions

    start = time.monotonic()
    preset = presets.load(args.preset, args.overrides)  # every key checked: no TensorFlow yet
    if args.preview and not isinstance(preset.settings, SequenceSettings):
        raise UserError(f"--preview: is for zoom and video presets; {args.preset} is a "
                        f"{preset.settings.pipeline}")
    if args.octaves and preset.settings.pipeline != "still":
        raise UserError(f"--octaves: is for still presets; {args.preset} is a "
                        f"{preset.settings.pipeline}")
    from pipelines.route import route  # batches, and renders on a cluster

    run = route(preset, runner)
    opts = RunOptions(force=args.force, reuse_frames=args.reuse_frames, quiet=args.quiet,
                      preview=args.preview,
                      octaves=Path(args.octaves).expanduser() if args.octaves else None)
    try:
        outputs = run(preset, opts)
    except ConfigError as exc:  # a value only found bad once the input was read
        raise preset.refuse(exc) from None
    minutes, seconds = divmod(round(time.monotonic() - start), 60)
    stderr_notify(f"wrote {', '.join(str(p) for p in outputs)} in {minutes}m{seconds:02d}s")
    return 0


def _list() -> int:
    from pipelines.config.presets import available, describe

    names = available()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}}  {describe(name)}".rstrip())
    return 0


def _keys(args: argparse.Namespace) -> int:
    import json

    from pipelines.config.keys import PIPELINE_KEYS
    from pipelines.config.reference import json_schema, key_rows

    if args.pipeline is not None and args.pipeline not in PIPELINE_KEYS:
        raise UserError(f"keys: unknown pipeline {args.pipeline!r}; one of "
                        f"{', '.join(PIPELINE_KEYS)}")
    if args.json:
        if args.pipeline is None:
            raise UserError(f"keys --json: name a pipeline ({', '.join(PIPELINE_KEYS)})")
        print(json.dumps(json_schema(args.pipeline), indent=2))
        return 0
    for row in key_rows(args.pipeline):
        default = "" if row.field.default is None else f" = {row.field.default}"
        where = "" if args.pipeline else f"  [{', '.join(row.pipelines)}]"
        print(f"{row.key}{default}  ({row.allowed}){where}")
        if row.field.help:
            print(f"    {row.field.help}")
    return 0


def _studio(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port: must be 1 to 65535, got {args.port}")
    try:
        from pipelines.studio.app import serve
    except ImportError as exc:
        raise UserError(f"studio: needs Gradio, which is not installed ({exc.name}); "
                        "make install adds it") from None
    root = Path(args.root)
    stderr_notify(f"studio: http://{args.host}:{args.port} (renders in {root}; Ctrl-C stops "
                  "it, and a render it was running resumes at the next start)")
    serve(root, args.host, args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    try:
        # overrides may also follow a switch (`render zoom --quiet frames=10`)
        args, extra = parser.parse_known_args(argv)
        if extra and (args.command != "render" or any(e.startswith("-") for e in extra)):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            args.overrides = [*args.overrides, *extra]
    except SystemExit as exc:  # usage errors (2) and --help (0) end here, not the process
        return int(exc.code or 0)
    debug = getattr(args, "debug", False)
    try:
        with _sigterm_as_interrupt():
            if args.command == "list":
                return _list()
            if args.command == "keys":
                return _keys(args)
            if args.command == "studio":
                return _studio(args)
            return _render(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"dreamreel: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 3: some inputs of a batch failed (issue 18)
    except KeyboardInterrupt as exc:
        if debug:
            traceback.print_exc()
        stderr_notify(interrupted(exc))
        return 143 if isinstance(exc, Terminated) else 130
    except (OSError, MemoryError) as exc:  # a read or write the pipelines did not foresee
        if debug:
            traceback.print_exc()
        print(f"dreamreel: error: {os_reason(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        text = " ".join(str(exc).split())[:200]
        print(f"dreamreel: internal error: {type(exc).__name__}: {text} (run again with --debug "
              "for the traceback, and please report it)", file=sys.stderr)
        return 1


def interrupted(exc: KeyboardInterrupt) -> str:
    """What an interruption leaves: a sequence's finished frames (see
    pipelines.sequence.render) can be resumed; anything else has nothing to resume."""
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    kept, where = getattr(exc, "kept_frames", (0, None))
    if kept:
        return (f"{what}; the {kept} finished frames are kept in {where}: run the same "
                "command to resume")
    return f"{what}; no output was written"


if __name__ == "__main__":
    sys.exit(main())
