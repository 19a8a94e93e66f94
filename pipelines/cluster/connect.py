"""Connecting to Ray for `cluster.address`: `local` starts Ray on this machine with
`cluster.workers` CPUs, `auto` joins the cluster this machine is part of, `ray://HOST:PORT`
(Ray Client) or `HOST:PORT` (the head's GCS) joins a remote one. A remote address is probed
with a plain TCP connect first, so an unreachable one costs at most `connect_timeout` seconds
and one line, not Ray's own minutes of retries."""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.config.settings import ClusterConfig
from render.errors import ConfigError
from render.memory import MEMORY_HEADROOM, available_memory, gigabytes

# environment a local worker needs to behave as this process does (offline weights, caches)
FORWARDED_ENV = ("DREAMREEL_", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")
# memory of one local worker: TensorFlow, the network and a frame's dream (peak RSS measured
# 1.0 GB for inception_v3, 1.2 GB for vgg16 dreaming 640x360 on an AMD EPYC, TF 2.21)
WORKER_BYTES = 1_200 * 2**20


@dataclass(frozen=True)
class Connection:
    """A usable Ray connection: where, whether it runs on this machine (workers then share
    this checkout and environment), and the runtime_env every actor/task is started with."""

    address: str
    local: bool
    runtime_env: dict[str, Any] = field(default_factory=dict)
    owned: bool = True  # Ray was started for this render (and stops with it)


def code_root() -> Path:
    """The directory holding the imported `pipelines` and `render` packages: a checkout, or
    where dreamreel is installed (site-packages, a `pip install --target` folder); local
    workers put it first on their PYTHONPATH so they import the same code."""
    return Path(__file__).resolve().parents[2]


def host_port(address: str) -> tuple[str, int]:
    """('HOST', PORT) of `ray://HOST:PORT` or `HOST:PORT` (IPv6 in brackets)."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float) -> None:
    """Refuse (ConfigError on cluster.address) when nothing accepts a TCP connection at the
    address within `timeout` seconds."""
    host, port = host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError("cluster.address", (
            f"cluster.address={address}: cannot reach {host}:{port} within {timeout:g} s "
            f"({reason}); is `ray start --head` running there, and the port open?")) from None


def runtime_env(local: bool) -> dict[str, Any]:
    """What actors and tasks start with. Local workers import the code this process imported
    (code_root: not whatever other dreamreel the interpreter has installed) and see this
    process's dreamreel settings; remote workers get these two packages uploaded (they need
    the dependencies installed: `pip install 'dreamreel[cluster]'`)."""
    if local:
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        path = os.pathsep.join(filter(None, (str(code_root()), os.environ.get("PYTHONPATH"))))
        return {"env_vars": {**env, "PYTHONPATH": path}}
    import pipelines
    import render

    return {"py_modules": [pipelines, render]}


def _bounded(call: Callable[[], object], address: str, timeout: float) -> None:
    """Run `call` (ray.init) in a daemon thread and give up after `timeout` seconds: Ray
    retries an address that accepts TCP but does not answer as Ray for a minute or more. The
    abandoned thread ends with the process."""
    done: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            done.append(None)
        except BaseException as exc:  # handed to the caller's thread
            done.append(exc)

    thread = threading.Thread(target=target, name="ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if not done:
        raise ConfigError("cluster.address", (
            f"cluster.address={address}: no Ray cluster answered within {timeout:g} s (the "
            f"address accepts connections but does not speak Ray; the Ray Client port of "
            f"`ray start --head` is 10001, the GCS port 6379)"))
    if done[0] is not None:
        raise done[0]


def first_paragraph(exc: BaseException) -> str:
    """The error's first paragraph on one line, whole (Ray's own reasons, e.g. workers killed
    for lack of memory, run to several sentences; cut, they lose their point)."""
    text = str(exc).strip().split("\n\n", 1)[0]
    return " ".join(text.split()) or type(exc).__name__


def check_local_fit(cluster: ClusterConfig, cpus: int | None = None,
                    free: int | None = None) -> None:
    """Refuse (ConfigError on cluster.workers) more local workers than this machine has CPUs
    or memory for: each worker is a process that takes a CPU and holds its own TensorFlow and
    network (about WORKER_BYTES), so more of them only compete for the same cores and memory
    (1000 of them ran the machine out of memory). `free`: bytes free (default: measured)."""
    cpus = cpus or os.cpu_count() or 1
    if cluster.workers > cpus:
        raise ConfigError("cluster.workers", f"cluster.workers: {cluster.workers} local workers "
                          f"need a CPU each, and this machine has {cpus}; use at most {cpus} "
                          "with cluster.address=local (or a cluster with more machines)")
    free = available_memory() if free is None else free
    if free is None:
        return
    room = int(free * MEMORY_HEADROOM)
    if cluster.workers * WORKER_BYTES > room:
        fits = room // WORKER_BYTES
        use = (f"use at most {fits}" if fits else "free some memory first (or use a cluster "
               "with more machines)")
        raise ConfigError("cluster.workers", (
            f"cluster.workers: {cluster.workers} local workers need about "
            f"{gigabytes(cluster.workers * WORKER_BYTES, math.ceil)} of memory (a network "
            f"each, about {gigabytes(WORKER_BYTES, math.ceil)}), and at most "
            f"{MEMORY_HEADROOM:.0%} of the {gigabytes(free, math.floor)} free is used; {use}"))


@contextmanager
def connected(cluster: ClusterConfig) -> Iterator[Connection]:
    """Ray, connected as `cluster.address` says, for the duration of the block. A Ray this
    process already started (e.g. a test session's) is used as it is, and left running."""
    import ray

    logging.getLogger("ray").setLevel(logging.ERROR)  # our one line, not Ray's start-up notes
    address = cluster.address
    local = address == "local"
    if local:
        check_local_fit(cluster)  # before Ray starts anything
    if address not in ("local", "auto"):
        probe(address, cluster.connect_timeout)
    if ray.is_initialized():
        yield Connection(address, local, runtime_env(local), owned=False)
        return
    # ray.init installs its own SIGTERM handler (exit at once); the CLI's (finish the frame
    # being written, say what is kept, exit 143) is put back
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    # a local Ray's session files (logs, sockets: tens of MB) go to a folder of our own,
    # removed when the render ends, not left in the system temp folder
    temp = Path(tempfile.mkdtemp(prefix="dreamreel-ray-")) if local else None
    try:
        if local:
            ray.init(num_cpus=cluster.workers, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=False,
                     _temp_dir=str(temp))
        else:
            _bounded(lambda: ray.init(address=address, log_to_driver=False,
                                      logging_level=logging.ERROR, configure_logging=False),
                     address, cluster.connect_timeout)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        _remove(temp)
        raise ConfigError("cluster.address", f"cluster.address={address}: cannot connect to "
                          f"Ray ({first_paragraph(exc)})") from None
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        yield Connection(address, local, runtime_env(local))
    finally:
        ray.shutdown()
        _remove(temp)


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
