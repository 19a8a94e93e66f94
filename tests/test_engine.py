"""Engine logic on a tiny in-test CNN: octaves, tiles, roll, channels, determinism, tracing."""

from __future__ import annotations

import numpy as np
import pytest

from render.engine import DreamEngine, DreamSettings, octave_sizes, tile_edges, work_size
from render.errors import UserError
from render.gradients import condition
from render.models import LayerTerm
from render.objectives import from_layer_terms
from render.tf_runtime import tf


def identity(x):
    return x


DEFAULT_TERMS = (LayerTerm("c2"),)


def make_engine(net, terms=DEFAULT_TERMS, smoothing="none", min_size=16):
    return DreamEngine(net, identity, from_layer_terms(terms), smoothing, min_size)


def test_octave_sizes_end_at_full_size_and_respect_min_size():
    sizes = octave_sizes((400, 300), 4, 1.5, min_size=100)
    assert sizes[-1] == (400, 300)
    assert all(min(s) >= 100 for s in sizes)
    assert sizes == sorted(sizes)
    assert len(sizes) == 3  # 300/1.5**3 = 89 < 100 is dropped
    assert octave_sizes((50, 40), 4, 1.4, min_size=100) == [(50, 40)]


def test_work_size_scales_tiny_images_up_to_min_size():
    assert work_size((3, 5), 64) == (64, 107)
    assert work_size((640, 360), 64) == (640, 360)


@pytest.mark.parametrize("length,tile", [(100, 512), (513, 512), (1000, 300), (7, 3)])
def test_tile_edges_cover_exactly_with_near_equal_tiles(length, tile):
    edges = tile_edges(tf.constant(length), tf.constant(tile)).numpy()
    assert edges[0] == 0 and edges[-1] == length
    widths = np.diff(edges)
    assert widths.max() <= tile and widths.max() - widths.min() <= 1


def test_tiled_gradient_covers_every_pixel_once():
    """With a pointwise net, each tile's gradient is the full gradient up to a positive
    scale: a tile missed or added twice would show as zeros or a different sign."""
    net = make_engine(__import__("conftest").build_tiny_cnn(pointwise=True))
    img = tf.random.stateless_uniform([37, 53, 3], seed=[1, 2], minval=-1, maxval=1)
    w = tf.constant([1.0])
    full = net._tiled_gradient(img, tf.constant(512), w).numpy()
    tiled = net._tiled_gradient(img, tf.constant(16), w).numpy()
    nonzero = np.abs(full) > 1e-9
    assert nonzero.mean() > 0.5
    assert np.array_equal(np.sign(full[nonzero]), np.sign(tiled[nonzero]))
    assert not np.any((tiled == 0) & nonzero)


def test_dream_changes_image_keeps_size_and_is_deterministic(tiny_cnn, photo):
    engine = make_engine(tiny_cnn)
    s = DreamSettings(octaves=2, octave_scale=1.3, steps=3, step_size=0.05, tile=32)
    a = engine.dream(photo, s, seed=5)
    b = engine.dream(photo, s, seed=5)
    c = engine.dream(photo, s, seed=6)
    assert a.shape == photo.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the random roll
    assert np.abs(a.astype(int) - photo).mean() > 1.0


def test_odd_and_tiny_sizes(tiny_cnn):
    engine = make_engine(tiny_cnn, min_size=24)
    s = DreamSettings(octaves=3, steps=2, tile=17)
    for w, h in ((1, 1), (3, 5), (31, 17), (65, 33)):
        out = engine.dream(np.full((h, w, 3), 128, np.uint8), s)
        assert out.shape == (h, w, 3)


def test_new_sizes_and_settings_do_not_retrace(tiny_cnn):
    engine = make_engine(tiny_cnn)
    for size, steps, tile in (((40, 30), 2, 64), ((57, 41), 3, 16), ((90, 33), 1, 32)):
        img = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        engine.dream(img, DreamSettings(octaves=2, steps=steps, tile=tile, step_size=0.02))
    assert engine.trace_count == 1


def test_channel_selection_changes_objective(tiny_cnn, photo):
    s = DreamSettings(octaves=1, steps=3, step_size=0.1)
    a = make_engine(tiny_cnn, (LayerTerm("c3", 1.0, (0,)),)).dream(photo, s)
    b = make_engine(tiny_cnn, (LayerTerm("c3", 1.0, (5,)),)).dream(photo, s)
    assert np.abs(a.astype(int) - b).mean() > 0.5


def test_channel_out_of_range_is_a_user_error(tiny_cnn):
    with pytest.raises(UserError, match="c3 has channels 0..15"):
        make_engine(tiny_cnn, (LayerTerm("c3", 1.0, (16,)),))


def test_layer_weights_select_layers_without_retrace(tiny_cnn, photo):
    engine = make_engine(tiny_cnn, (LayerTerm("c1"), LayerTerm("c3")))
    s = DreamSettings(octaves=1, steps=3, step_size=0.1)
    a = engine.dream(photo, s, layer_weights=[1.0, 0.0])
    b = engine.dream(photo, s, layer_weights=[0.0, 1.0])
    assert np.abs(a.astype(int) - b).mean() > 0.5
    assert engine.trace_count == 1


@pytest.mark.parametrize("smoothing", ["gaussian", "laplacian"])
def test_smoothing_moves_noisy_gradient_energy_to_low_frequencies(smoothing):
    """Raw input gradients of deep nets are close to white noise; both smoothers must give
    a unit-RMS result whose neighbouring pixels differ less than the raw one's."""
    noise = tf.random.stateless_normal([96, 128, 3], seed=[3, 4])

    def roughness(g):
        g = g.numpy()
        return np.abs(np.diff(g, axis=1)).mean() / np.abs(g).mean()

    out = condition(noise, smoothing, tf.constant(0.5))
    assert out.shape == noise.shape
    assert np.sqrt(np.mean(out.numpy() ** 2)) == pytest.approx(1.0, rel=1e-3)
    assert roughness(out) < 0.8 * roughness(condition(noise, "none", tf.constant(0.5)))


def test_octave_callback_sees_each_octave(tiny_cnn, photo):
    seen = []
    make_engine(tiny_cnn).dream(photo, DreamSettings(octaves=3, octave_scale=1.2, steps=1),
                                callback=lambda k, img: seen.append((k, img.shape)))
    assert [k for k, _ in seen] == [0, 1, 2]
    assert seen[-1][1] == photo.shape


def _input_gradient(model, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(model(x)))  # a non-trivial dy for every output element
    return tape.gradient(loss, x)


@pytest.mark.parametrize("padding,kernel", [("same", 3), ("same", 4), ("valid", 3),
                                            ("same", (2, 5))])
def test_fast_input_gradient_equals_tensorflows(padding, kernel):
    import keras

    from render.input_gradients import with_fast_input_gradients

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(5, kernel, padding=padding, activation="relu", name="a")(inp)
    x = keras.layers.Conv2D(4, kernel, padding=padding, use_bias=False, name="b")(x)
    model = keras.Model(inp, x)
    fast = with_fast_input_gradients(model)
    assert all(type(layer).__name__ == "FastInputGradConv2D" for layer in fast.layers[1:])
    image = tf.random.stateless_normal([1, 19, 23, 3], seed=[1, 2])
    assert np.allclose(fast(image), model(image), atol=1e-6)
    want, got = _input_gradient(model, image), _input_gradient(fast, image)
    assert float(tf.reduce_max(tf.abs(want))) > 0.1
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_steps_run_a_few_at_a_time_give_the_same_dream(tiny_cnn, photo, monkeypatch):
    """A large image runs its octave's steps in several calls (so Ctrl-C is seen between
    them); the dream is byte-identical to running them in one call."""
    from render import engine as engine_module

    engine = make_engine(tiny_cnn, smoothing="gaussian")
    s = DreamSettings(octaves=2, steps=5, step_size=0.05)
    whole = engine.dream(photo, s, seed=3)
    monkeypatch.setattr(engine_module, "STEP_PIXELS", 1)  # one step per call
    np.testing.assert_array_equal(engine.dream(photo, s, seed=3), whole)
    assert engine.trace_count == 1


def test_an_interrupt_during_an_octave_stops_it_between_steps(tiny_cnn, monkeypatch):
    """SIGINT arriving while the octave graph runs is honoured when that call returns, not
    after the whole octave (a 12000x8000 frame once ignored Ctrl-C and SIGTERM for minutes)."""
    import os
    import signal
    import threading

    from render import engine as engine_module

    steps, image = 40, np.full((256, 256, 3), 128, np.uint8)
    monkeypatch.setattr(engine_module, "STEP_PIXELS", 256 * 256 * 2)  # two steps per call
    engine = make_engine(tiny_cnn)
    started, running = [], threading.Event()  # steps of each call begun
    octave = engine._octave

    def counted(x, first, count, *args):
        started.append(int(count))
        running.set()
        return octave(x, first, count, *args)

    engine._octave = counted
    sender = threading.Thread(target=lambda: running.wait(30) and os.kill(os.getpid(),
                                                                          signal.SIGINT))
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        engine.dream(image, DreamSettings(octaves=1, steps=steps, step_size=0.01))
    sender.join()
    assert started and sum(started) < steps  # stopped with steps left
    assert set(started) == {2}


def test_many_engines_in_one_process_are_not_warned_about_retracing():
    """Each engine traces its octave once; TensorFlow counts traces per code object, and
    engines sharing one (methods, closures) were warned after five engines in a process. A
    fresh process: TensorFlow says it at most twice per code object, and the other tests in
    this process could have used those up."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent("""
        import keras
        import numpy as np
        from render.engine import DreamEngine, DreamSettings
        from render.objectives import layer

        inp = keras.Input((None, None, 3))
        net = keras.Model(inp, keras.layers.Conv2D(4, 3, padding="same", name="c")(inp))
        for _ in range(8):
            engine = DreamEngine(net, lambda x: x, layer("c"), "none", 16)
            engine.dream(np.zeros((40, 40, 3), np.uint8), DreamSettings(octaves=1, steps=1))
            assert engine.trace_count == 1
        print("rendered")
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "rendered" in run.stdout, run.stderr[-3000:]
    assert "retracing" not in run.stderr, run.stderr[-3000:]
