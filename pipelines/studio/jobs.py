"""The studio's render queue: renders run one at a time, each in its own `python -m pipelines
render JOB/preset.yaml` process (so the page's render equals the CLI's with that YAML, byte
for byte), on a worker thread of the server — a closed browser tab does not stop them, and
every tab sees the same queue. Each job is a folder under ROOT/jobs (job.json, preset.yaml,
its output and sidecar); after a restart, a job that was running is queued again and resumes
from its checkpoints. Cancel sends the render Ctrl-C (its finished frames are kept); Resume
queues it again."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import presets
from render.errors import UserError

PROGRESS = re.compile(r"(\d+)/(\d+) \[[^<\]]*<([^,\]]*)")
EXTENSIONS = {"still": ".png", "layers": ".png", "zoom": ".mp4", "video": ".mp4"}


@dataclass
class Job:
    """One render: what was asked, where it goes, and how far it is."""

    id: str
    preset: str
    overrides: list[str]
    output: str
    status: str = "queued"  # queued, running, done, failed, cancelled
    done: int = 0
    total: int = 0
    eta: str = ""
    message: str = ""
    created: float = field(default_factory=time.time)
    preview: bool = False  # --preview: the draft of the camera path and the plot
    pipeline: str = ""
    model: str = ""

    def results(self) -> list[Path]:
        """What the finished job wrote: its output, or a preview's draft and plot."""
        out = Path(self.output)
        found = ([out.with_name(f"{out.stem}.preview{ext}") for ext in (".mp4", ".png")]
                 if self.preview else [out])
        return [p for p in found if p.is_file()]

    @property
    def folder(self) -> Path:
        return Path(self.output).parent

    @property
    def yaml_path(self) -> Path:
        return self.folder / "preset.yaml"


def output_name(loaded: presets.Preset) -> str:
    """out.<ext>: the preset file's own output kind (a loop's GIF), else the pipeline's."""
    own = loaded.config.get("output")
    if own:
        return "out" + Path(own[0] if isinstance(own, list) else own).suffix
    return "out" + EXTENSIONS[str(loaded.config["pipeline"])]


class Queue:
    """The jobs under `root`, and the worker that renders them in order."""

    def __init__(self, root: Path, start: bool = True) -> None:
        self.root = root
        self.folder = root / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._running: str | None = None
        self._cancelled: set[str] = set()
        for job in self.jobs():  # a render the last studio did not finish resumes
            if job.status == "running":
                job.status = "queued"
                self._save(job)
        if start:
            threading.Thread(target=self._work, name="studio-queue", daemon=True).start()

    def submit(self, preset: str, overrides: list[str], files: dict[str, Path],
               preview: bool = False) -> Job:
        """Check the render (UserError: the CLI's one line) and queue it. `files`: keys the
        server sets to its own stored files (input, audio.file); `preview`: only the draft
        and the plot (zoom and video presets)."""
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        folder = self.folder / job_id
        mine = [f"{key}={path}" for key, path in files.items()]
        loaded = presets.load(preset, [*overrides, *mine])
        output = folder / output_name(loaded)
        loaded = presets.load(preset, [*overrides, *mine, f"output={output}"])
        if preview and loaded.config["pipeline"] not in ("zoom", "video"):
            raise UserError(f"preview: is for zoom and video presets; {preset} is a "
                            f"{loaded.config['pipeline']}")
        folder.mkdir(parents=True)
        config = {k: v for k, v in loaded.config.items()}
        (folder / "preset.yaml").write_text(
            f"# written by dreamreel studio for preset {preset}; the same render from the "
            f"command line:\n#   python -m pipelines render {folder / 'preset.yaml'}\n"
            + yaml.safe_dump(config, sort_keys=False))
        job = Job(job_id, preset, overrides, str(output), preview=preview,
                  pipeline=str(loaded.config["pipeline"]),
                  model=str(loaded.config["model"]["name"]))
        self._save(job)
        self._wake.set()
        return job

    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        found = []
        for path in self.folder.glob("*/job.json"):
            try:
                found.append(Job(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        path = self.folder / Path(job_id).name / "job.json"
        if not path.is_file():
            raise UserError(f"no render {job_id!r}")
        return Job(**json.loads(path.read_text()))

    def cancel(self, job_id: str) -> None:
        """Stop a render (Ctrl-C: its frames are kept) or take a queued one off the queue."""
        with self._lock:
            job = self.get(job_id)
            if job.status == "running" and self._running == job.id and self._process:
                self._cancelled.add(job.id)
                self._process.send_signal(signal.SIGINT)
            elif job.status == "queued":
                job.status, job.message = "cancelled", "cancelled before it started"
                self._save(job)

    def resume(self, job_id: str) -> None:
        """Queue a cancelled or failed render again: it resumes from its kept frames."""
        with self._lock:
            job = self.get(job_id)
            if job.status in ("cancelled", "failed"):
                job.status, job.message = "queued", ""
                self._save(job)
        self._wake.set()

    def latest_frame(self, job: Job) -> Path | None:
        """What a running render shows: a still's last finished octave, a sequence's newest
        checkpointed frame."""
        if job.pipeline == "still":
            octaves = sorted(job.folder.glob("octaves/octave_*.png"),
                             key=lambda p: int(p.stem.split("_")[1]))
            return octaves[-1] if octaves else None
        from pipelines.sequence.checkpoints import work_dir_for

        frames = sorted(work_dir_for(Path(job.output)).glob("frame_*.png"))
        return frames[-1] if frames else None

    def layer_gallery(self, model: str, jobs: list[Job] | None = None) -> Path | None:
        """The newest finished layer gallery of `model` (among `jobs`, default: every job)."""
        return next((p for j in (self.jobs() if jobs is None else jobs)
                     if j.pipeline == "layers" and j.model == model and j.status == "done"
                     for p in j.results()), None)

    def _save(self, job: Job) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        part = job.folder / ".job.json.part"
        part.write_text(json.dumps(asdict(job), indent=1))
        part.replace(job.folder / "job.json")

    def _next(self) -> Job | None:
        queued = [j for j in self.jobs() if j.status == "queued"]
        return min(queued, key=lambda j: j.created) if queued else None

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        """Render `job` in its own process, reading its progress bar as it goes."""
        cmd = [sys.executable, "-m", "pipelines", "render", str(job.yaml_path),
               *(["--preview"] if job.preview else []),
               *(["--octaves", str(job.folder / "octaves")] if job.pipeline == "still" else [])]
        with self._lock:
            job.status, job.message = "running", ""
            self._save(job)
            self._process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, cwd=self.root)
            self._running = job.id
        process = self._process
        assert process.stderr is not None
        lines: list[str] = []
        buffer = b""
        while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
            buffer += chunk
            *parts, buffer = re.split(rb"[\r\n]", buffer)
            for part in parts:
                text = part.decode(errors="replace").strip()
                if not text:
                    continue
                if match := PROGRESS.search(text):
                    job.done, job.total = int(match[1]), int(match[2])
                    job.eta = match[3].strip()
                    self._save(job)
                elif text.startswith("dreamreel:"):
                    lines.append(text)
        code = process.wait()
        with self._lock:
            cancelled = job.id in self._cancelled
            self._cancelled.discard(job.id)
            self._process, self._running = None, None
            if code == 0:
                job.status, job.message = "done", lines[-1] if lines else ""
            elif cancelled:
                job.status = "cancelled"
                job.message = lines[-1] if lines else "cancelled"
            else:
                job.status = "failed"
                errors = [line for line in lines if "error" in line]
                job.message = (errors or lines or [f"the render ended with code {code}"])[-1]
            self._save(job)

    def describe(self, job: Job) -> dict[str, Any]:
        """A job as the page lists it."""
        share = f"{job.done}/{job.total}" if job.total else ""
        return {"render": job.id, "preset": job.preset, "status": job.status,
                "progress": share, "eta": job.eta if job.status == "running" else "",
                "message": job.message}
