"""The expression language of schedulable keys: `1.01 + 0.04 * beat`,
`0.3 * sin(2 * pi * t / 96)`, `0.01 + 0.02 * smooth(rms, 4)`.

An expression is parsed with `ast` (Python's own grammar, mode "eval") and its tree is walked
against an allow-list: numbers, + - * / // % **, unary + -, the variables and the functions
below. Nothing else (attributes, subscripts, strings, comparisons, lambdas...) is accepted, and
nothing is ever `eval`ed: `evaluate` computes the tree itself with NumPy, for every frame at
once, so a division by zero or a non-finite value is found at the frame where it happens.

Variables: t (frame index), s (seconds, t / fps), fps, pi, and the audio features rms, onset,
beat, bpm (see pipelines.audio.features). Functions: sin, cos, abs, min, max, clip(x, lo, hi),
smooth(x, frames) (centred moving average over `frames` frames) and band(lo_hz, hi_hz) (the
energy between two frequencies, a feature).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from render.errors import ConfigError, show

MAX_LENGTH = 1000  # characters: no schedule needs more; bounds the parse
MAX_NODES = 200
PLAIN_VARIABLES = ("t", "s", "fps", "pi")
FEATURES = ("rms", "onset", "beat", "bpm")  # audio features usable as variables
VARIABLES = (*PLAIN_VARIABLES, *FEATURES)
# name -> (fewest, most) arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "sin": (1, 1), "cos": (1, 1), "abs": (1, 1), "min": (2, 8), "max": (2, 8),
    "clip": (3, 3), "smooth": (2, 2), "band": (2, 2)}
MAX_SMOOTH = 10_000  # frames
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.divide, ast.FloorDiv: np.floor_divide, ast.Mod: np.mod,
           ast.Pow: np.power}
_DIVIDING = (ast.Div, ast.FloorDiv, ast.Mod)
_UNARY = {ast.UAdd: np.positive, ast.USub: np.negative}


def band_name(low: float, high: float) -> str:
    """The feature name of band(low, high), as the sidecar records it."""
    return f"band_{low:g}_{high:g}"


@dataclass(frozen=True)
class Expr:
    """A checked expression: its text, its tree, and the audio features it reads (names as
    `FEATURES` or band_name(); `bands`: the (low, high) of each band)."""

    text: str
    tree: ast.Expression
    features: frozenset[str]
    bands: frozenset[tuple[float, float]]

    def __eq__(self, other: object) -> bool:  # ast nodes compare by identity
        return isinstance(other, Expr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def parse(key: str, text: str, column: int = 0) -> Expr:
    """Check expression `text` of preset key `key`; errors name the column (1-based, counted
    from `column` when the expression sits inside a longer value)."""
    if len(text) > MAX_LENGTH:
        raise ConfigError(key, f"{key}: expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        lead = len(text) - len(text.lstrip())
        at = column + lead + (exc.offset or 1)
        raise ConfigError(key, f"{key}: syntax error at column {at} of expression "
                          f"{show(text.strip())}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ConfigError(key, f"{key}: expression {show(text.strip())} cannot be read"
                          ) from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ConfigError(key, f"{key}: expression {show(text.strip())} is too long "
                          f"(at most {MAX_NODES} parts)")
    lead = len(text) - len(text.lstrip())
    features: set[str] = set()
    bands: set[tuple[float, float]] = set()
    for node in nodes:
        _allowed(key, node, text.strip(), column + lead, features, bands)
    return Expr(text.strip(), tree, frozenset(features), frozenset(bands))


def _where(node: ast.AST, column: int) -> str:
    return f"column {column + getattr(node, 'col_offset', 0) + 1}"


def _allowed(key: str, node: ast.AST, text: str, column: int, features: set[str],
             bands: set[tuple[float, float]]) -> None:
    """Refuse any node outside the allow-list; collect the audio features read."""
    where = _where(node, column)
    if isinstance(node, (ast.Expression, ast.Load, *_BINARY, *_UNARY)):
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ConfigError(key, f"{key}: operator not allowed at {where} of {show(text)}; "
                              "allowed: + - * / // % **")
        return
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ConfigError(key, f"{key}: operator not allowed at {where} of {show(text)}")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ConfigError(key, f"{key}: {show(node.value)} at {where} of {show(text)} is "
                              "not a number")
        if not _small(node.value) or not math.isfinite(float(node.value)):
            raise ConfigError(key, f"{key}: number at {where} of {show(text)} is out of range")
        return
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            return  # checked with its call
        if node.id not in VARIABLES:
            raise ConfigError(key, f"{key}: unknown variable {node.id!r} at {where} of "
                              f"{show(text)}; allowed: {', '.join(VARIABLES)}")
        if node.id in FEATURES:
            features.add(node.id)
        return
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            what = repr(name or ast.unparse(node.func))
            raise ConfigError(key, f"{key}: unknown function {what} at {where} of "
                              f"{show(text)}; allowed: {', '.join(FUNCTIONS)}")
        low, high = FUNCTIONS[name]
        if node.keywords or not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise ConfigError(key, f"{key}: {name}() at {where} of {show(text)} takes {count} "
                              "arguments")
        if name == "band":
            lo, hi = (_constant(key, arg, text, column, "band() frequencies")
                      for arg in node.args)
            if not 0 <= lo < hi <= 100_000:
                raise ConfigError(key, f"{key}: band({lo:g}, {hi:g}) at {where} of "
                                  f"{show(text)}: needs 0 <= low < high (Hz)")
            features.add(band_name(lo, hi))
            bands.add((lo, hi))
        if name == "smooth":
            n = _constant(key, node.args[1], text, column, "smooth()'s frame count")
            if not (n == int(n) and 1 <= n <= MAX_SMOOTH):
                raise ConfigError(key, f"{key}: smooth() at {where} of {show(text)}: the frame "
                                  f"count must be a whole number from 1 to {MAX_SMOOTH}")
        return
    raise ConfigError(key, f"{key}: {type(node).__name__.lower()} not allowed at {where} of "
                      f"{show(text)}; an expression has numbers, + - * / // % **, "
                      f"variables ({', '.join(VARIABLES)}) and functions "
                      f"({', '.join(FUNCTIONS)})")


def _small(value: int | float) -> bool:
    """Whether float(value) cannot overflow."""
    return isinstance(value, float) or abs(value) < 10 ** 300


def _constant(key: str, node: ast.AST, text: str, column: int, what: str) -> float:
    """A literal number argument (optionally negated)."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool) and _small(node.value)):
        return sign * float(node.value)
    raise ConfigError(key, f"{key}: {what} at {_where(node, column)} of {show(text)} must be "
                      "plain numbers")


class EvalError(ValueError):
    """An expression that has no finite value at some frame: `frame` and why."""

    def __init__(self, frame: int, reason: str) -> None:
        super().__init__(f"{reason} at frame {frame}")
        self.frame = frame
        self.reason = reason


Values = Mapping[str, "np.ndarray | float"]


def evaluate(expr: Expr, frames: int, variables: Values) -> np.ndarray:
    """The value of `expr` at frames 0..frames-1 (float64, shape (frames,)). `variables`
    maps each variable and feature name (FEATURES, band_name()) to a number or a per-frame
    array. Raises EvalError naming the first frame where a division by zero happens or the
    value is not finite."""
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(_eval(expr.tree.body, frames, variables),
                                         dtype=np.float64), (frames,))
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise EvalError(int(bad[0]), "the value is not a finite number")
    return np.array(out)


def _first(mask: np.ndarray, frames: int) -> int | None:
    mask = np.broadcast_to(mask, (frames,))
    hit = np.flatnonzero(mask)
    return int(hit[0]) if hit.size else None


def _eval(node: ast.AST, frames: int, variables: Values) -> np.ndarray | float:
    if isinstance(node, ast.Constant):  # parse() let only numbers through
        assert isinstance(node.value, (int, float))
        return float(node.value)
    if isinstance(node, ast.Name):
        return variables[node.id]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, frames, variables))
    if isinstance(node, ast.BinOp):
        left = np.asarray(_eval(node.left, frames, variables), dtype=np.float64)
        right = np.asarray(_eval(node.right, frames, variables), dtype=np.float64)
        if isinstance(node.op, _DIVIDING):
            zero = _first(right == 0, frames)
            if zero is not None:
                raise EvalError(zero, "division by zero")
        result = _BINARY[type(node.op)](left, right)
        bad = _first(~np.isfinite(result), frames)
        if bad is not None:
            raise EvalError(bad, "the value is not a finite number (overflow)")
        return result
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    name = node.func.id
    if name == "band":
        lo, hi = (_literal(arg) for arg in node.args)
        return variables[band_name(lo, hi)]
    if name == "smooth":
        from scipy.ndimage import uniform_filter1d  # 1 s to import: only when used

        x = np.broadcast_to(np.asarray(_eval(node.args[0], frames, variables), np.float64),
                            (frames,))
        return uniform_filter1d(x, size=int(_literal(node.args[1])), mode="nearest")
    args = [_eval(arg, frames, variables) for arg in node.args]
    if name == "sin":
        return np.sin(args[0])
    if name == "cos":
        return np.cos(args[0])
    if name == "abs":
        return np.abs(args[0])
    if name == "min":
        return np.minimum.reduce(np.broadcast_arrays(*map(np.asarray, args)))
    if name == "max":
        return np.maximum.reduce(np.broadcast_arrays(*map(np.asarray, args)))
    if name == "clip":
        return np.minimum(np.maximum(args[0], args[1]), args[2])
    raise AssertionError(f"function {name} passed the allow-list but has no implementation")


def _literal(node: ast.AST) -> float:
    if isinstance(node, ast.UnaryOp):
        value = _literal(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
    return float(node.value)


def plain_variables(frames: int, fps: float) -> dict[str, np.ndarray | float]:
    """t, s, fps and pi for a clip of `frames` frames at `fps`."""
    t = np.arange(frames, dtype=np.float64)
    return {"t": t, "s": t / fps, "fps": float(fps), "pi": math.pi}
