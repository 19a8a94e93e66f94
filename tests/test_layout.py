"""The shape of the house: no import circles, configuration without TensorFlow, one table of
pipelines, errors that say where a bad value came from, and every key checked at load."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.config import keys, presets
from pipelines.config.settings import VideoSettings, ZoomSettings
from pipelines.registry import PIPELINES
from render.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("render", "pipelines")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Project modules `path` imports at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports. Package __init__ files are left out as
    targets: `from render import x` imports the module render.x (the package is already
    loaded), and render/__init__ only resolves `Dreamer` lazily."""
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p): p for p in files if p.name != "__init__.py"}
    return {name: {m for m in project_imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_render_and_pipelines():
    graph = import_graph()
    assert "pipelines.config.presets" in graph and "render.engine" in graph
    assert cycle(graph) is None


def test_configuration_never_imports_tensorflow():
    code = (
        "import sys\n"
        "from pipelines.config import presets\n"
        "from pipelines.cli import main\n"
        "for name in presets.available():\n"
        "    presets.load(name, ['seed=3'])\n"
        "assert main(['list']) == 0\n"
        "assert main(['render', 'zoom', 'dream.stepz=3']) == 2\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not heavy, heavy[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "did you mean 'dream.steps'" in done.stderr


def test_a_render_without_a_cluster_imports_nothing_of_the_cluster_package(tmp_path):
    """A video, a batch of stills and the route of every shipped preset, none with a cluster,
    run in one process that never imports pipelines.cluster (nor Ray); the route of a video
    on a cluster does import it (so the check can fail)."""
    code = (
        "import importlib.util, sys\n"
        "from pipelines.cli import main\n"
        "from pipelines.config import presets\n"
        "from pipelines.registry import runner\n"
        "from pipelines.route import route\n"
        "from render.media.image import default_image, write_image\n"
        "tiny = ['model.name=efficientnet_lite0', 'model.weights=none', 'dream.octaves=1',\n"
        "        'dream.steps=1', '--quiet']\n"
        "first = ['dream.first_frame.octaves=1', 'dream.first_frame.steps=1']\n"
        "for name in presets.available():\n"
        "    route(presets.load(name, []), runner)\n"
        f"tmp = {str(tmp_path)!r}\n"
        "write_image(tmp + '/in/a.png', default_image((64, 48), seed=1))\n"
        "assert main(['render', 'video', 'frames=3', 'size=[64,48]', f'output={tmp}/v.mp4',\n"
        "             *tiny, *first]) == 0\n"
        "assert main(['render', 'still', f'input={tmp}/in', f'output={tmp}/out', *tiny]) == 0\n"
        "loaded = sorted(m for m in sys.modules\n"
        "                if m.startswith('pipelines.cluster') or m.split('.')[0] == 'ray')\n"
        "assert not loaded, loaded\n"
        "if importlib.util.find_spec('ray'):\n"
        "    route(presets.load('video', ['cluster.address=local']), runner)\n"
        "    assert 'pipelines.cluster.video' in sys.modules\n")
    (tmp_path / "in").mkdir()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "v.mp4").is_file() and (tmp_path / "out" / "a.png").is_file()


def test_every_pipeline_has_keys_and_a_module():
    assert set(PIPELINES) == set(keys.PIPELINE_KEYS)


def test_list_shows_a_description_for_every_preset(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == presets.available()
    assert all(len(line.split(None, 1)) == 2 for line in lines), lines


@pytest.mark.parametrize("override,where,message", [
    ("dream.stepz=3", "command line: dream.stepz=3: ", "did you mean 'dream.steps'"),
    ("gif.dither=foo", "command line: gif.dither=foo: ", "gif.dither"),
    ("dream.steps=0", "command line: dream.steps=0: ", "must be >= 1"),
    ("model.layers=mixed99", "command line: model.layers=mixed99: ", "unknown layer"),
    ("motion.zoom='0:(1.02), 99:(1)'", "command line: motion.zoom=", "past the last frame"),
])
def test_a_bad_override_names_the_command_line(override, where, message):
    with pytest.raises(UserError) as caught:
        presets.load("zoom", [override])
    assert str(caught.value).startswith(where) and message in str(caught.value)


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("pipeline: zoom\ngif:\n  dither: foo\n")
    with pytest.raises(UserError, match=rf"^{path}: gif.dither: "):
        presets.load(str(path), ["dream.steps=3"])  # a good override does not take the blame


@pytest.mark.parametrize("output", ["a.mp4", "a.gif"])
def test_gif_dither_is_checked_before_anything_is_written(tmp_path, capsys, output):
    out = tmp_path / output
    code = main(["render", "loop", f"output={out}", "gif.dither=foo", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "command line: gif.dither=foo" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no lock, no work directory, no output


def test_typed_settings_carry_parsed_schedules():
    settings = presets.load("zoom", ["frames=10", "motion.angle='0:(0), 9:(9)'"]).settings
    assert settings.motion is not None and settings.motion.angle.at(3) == pytest.approx(3.0)
    assert settings.sequence is not None and settings.sequence.frames == 10
    assert isinstance(settings, ZoomSettings) and not isinstance(settings, VideoSettings)
