"""Latency predictor for hardware-aware search: a per-layer lookup table measured on this machine.

As once-for-all's ``latency_table.py``: every elastic layer of a family is timed on its own (eager
PyTorch, batch 1, on this machine at a fixed thread count) and a network's latency is predicted as
the sum of its layers' entries, plus a fixed overhead and times a scale (the ops that are not elastic
layers: activations, adds, concatenations, crops, and Python), both fitted by least squares against
whole sub-networks measured end to end (``calibrate``).

The layers come from the cost model's trace (``CostModel.calls``: kind, kernel, input and output
grid of every elastic layer call), read with each layer's stride, padding and groups. A table entry
is keyed by (kind, in channels, out channels, kernel, stride, groups, input size) plus the padding
that sets the output size. Layers that differ only in width share a *geometry*; for each geometry
the table holds a small grid of widths (``grid`` points per axis from the narrowest to the widest
the channel space allows), and a width between grid points is bilinear-interpolated, which is
exact when a layer's time is ``a + b * C_in * C_out`` and keeps whatever the measurement adds to
it. So the table is built once, in seconds, and ``predict`` never measures: a search can call it on
thousands of configs.

Table entries and whole networks alike are timed by their fastest run: on a machine shared with
other jobs the median moves with their load while the minimum barely does, and the predictor must
compare like with like (``gancomp-lite bench`` reports the protocol's mean and median).

    predictor = LatencyPredictor.for_arch("tpgan", 64, {"base": 8, "step": 4}, threads=1)
    predictor.predict(config_dict)            # milliseconds
"""
from __future__ import annotations

import json
import platform
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancomp_lite.bench import time_forward
from gancomp_lite.seeding import cpu_threads

TABLE_VERSION = 1
POINTWISE_KINDS = ("depthwise", "depthwise-convT", "instancenorm", "batchnorm")   # C_in = C_out = groups


@dataclass(frozen=True)
class Geometry:
    """Everything about a layer call but its widths: what its time depends on besides C_in and C_out."""
    kind: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    padding_mode: str
    bias: bool
    affine: bool                      # norms only
    input: tuple[int, ...]            # (H, W) of the input; (tokens,) for a linear layer

    @property
    def channelwise(self) -> bool:
        return self.kind in POINTWISE_KINDS

    def key(self, cin: int, cout: int) -> str:
        """The table key: kind, in ch, out ch, kernel, stride, groups, input size (and the padding)."""
        groups = cin if self.kind in ("depthwise", "depthwise-convT") else 1
        return "|".join([self.kind, str(cin), str(cout), _dims(self.kernel), _dims(self.stride), str(groups),
                         _dims(self.input), "p" + _dims(self.padding), "op" + _dims(self.output_padding),
                         self.padding_mode, f"bias{int(self.bias)}", f"affine{int(self.affine)}"])

    def module(self, cin: int, cout: int) -> tuple[nn.Module, torch.Tensor]:
        """A stand-alone layer of this geometry at these widths, and a batch-1 input for it."""
        if self.kind == "linear":
            tokens = self.input[0]
            x = torch.randn(1, tokens, cin) if tokens > 1 else torch.randn(1, cin)
            return nn.Linear(cin, cout, bias=self.bias), x
        x = torch.randn(1, cin, *self.input)
        if self.kind in ("conv", "depthwise"):
            groups = cin if self.kind == "depthwise" else 1
            return nn.Conv2d(cin, cout, self.kernel, self.stride, self.padding, groups=groups, bias=self.bias,
                             padding_mode=self.padding_mode), x
        if self.kind in ("convT", "depthwise-convT"):
            groups = cin if self.kind == "depthwise-convT" else 1
            return nn.ConvTranspose2d(cin, cout, self.kernel, self.stride, self.padding, self.output_padding,
                                      groups=groups, bias=self.bias), x
        if self.kind == "instancenorm":
            return nn.InstanceNorm2d(cin, affine=self.affine), x
        if self.kind == "batchnorm":
            return nn.BatchNorm2d(cin, affine=self.affine), x
        raise ValueError(f"no latency entry for layer kind {self.kind!r}")


def _dims(values: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in values)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _input_hw(module: nn.Module, kind: str, in_pixels: int, out_hw: tuple[int, ...]) -> tuple[int, int]:
    """The input grid of a traced call, from its pixel count, output grid and the layer's stride and padding."""
    if kind in ("instancenorm", "batchnorm"):
        return tuple(out_hw)

    def candidates(out: int, k: int, s: int, p: int, d: int, op: int) -> range:
        if kind.endswith("convT"):      # out = (in - 1) s - 2p + d (k - 1) + op + 1
            value = (out - op - 1 - d * (k - 1) + 2 * p) // s + 1
            return range(value, value + 1)
        low = (out - 1) * s - 2 * p + d * (k - 1) + 1       # out = floor((in + 2p - d (k - 1) - 1) / s) + 1
        return range(max(low, 1), low + s)

    k, s, p, d = (_pair(getattr(module, a)) for a in ("kernel_size", "stride", "padding", "dilation"))
    op = _pair(getattr(module, "output_padding", 0))
    fits = [(h, w) for h in candidates(out_hw[0], k[0], s[0], p[0], d[0], op[0])
            for w in candidates(out_hw[1], k[1], s[1], p[1], d[1], op[1]) if h * w == in_pixels]
    if not fits:
        raise ValueError(f"cannot recover the input grid of a {kind} layer: {in_pixels} pixels in, {out_hw} out")
    return fits[0]


def _geometry(module: nn.Module, call: Any) -> Geometry:
    kind = call.kind
    if kind == "linear":
        return Geometry(kind, (1, 1), (1, 1), (0, 0), (0, 0), "zeros", module.bias is not None, False,
                        (call.in_pixels,))
    if kind in ("instancenorm", "batchnorm"):
        return Geometry(kind, (1, 1), (1, 1), (0, 0), (0, 0), "zeros", False, bool(module.affine),
                        tuple(call.out_hw))
    return Geometry(kind, _pair(module.kernel_size), _pair(module.stride), _pair(module.padding),
                    _pair(getattr(module, "output_padding", 0)), getattr(module, "padding_mode", "zeros"),
                    module.bias is not None, False, _input_hw(module, kind, call.in_pixels, call.out_hw))


def _grid(low: int, high: int, points: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(low, high, max(points, 1))})


def measure_layer(module: nn.Module, x: torch.Tensor, budget_ms: float = 15.0, min_runs: int = 3,
                  max_runs: int = 50) -> float:
    """Fastest of enough runs of one layer to fill about `budget_ms` (within [min_runs, max_runs]), in ms."""
    module.eval()
    first = time_forward(module, (x,), warmup=1, runs=1)[0]
    runs = int(min(max_runs, max(min_runs, budget_ms / max(first, 1e-3))))
    return min(time_forward(module, (x,), warmup=1, runs=runs))


class LatencyPredictor:
    """Predicted eager latency (ms, batch 1) of any config of one (arch, size, knobs) at `threads` threads.

    ``predict(config) = overhead_ms + scale * (sum of the layers' table entries)``. Build with ``for_arch``;
    ``evaluate`` measures real sub-networks and reports the prediction error.
    """

    def __init__(self, arch: str, size: int, knobs: Mapping[str, Any] | None = None, threads: int | None = None,
                 grid: int = 3) -> None:
        from gancomp_lite.cost import CostModel
        from gancomp_lite.models.registry import build, channel_space

        self.arch, self.size, self.knobs = arch, size, dict(knobs or {})
        self.threads = threads or torch.get_num_threads()
        self.grid = grid
        self.space = channel_space(arch, size, **self.knobs)
        self.cost = CostModel.for_arch(arch, size, **self.knobs)
        with torch.device("meta"):
            modules = dict(build(arch, None, size, **self.knobs).named_modules())
        self.geometries = [_geometry(modules[call.name], call) for call in self.cost.calls]
        self.axes = self._axes()
        self.entries: dict[str, float] = {}
        self._pack: tuple | None = None   # (entry count, xs_in, xs_out, values): rebuilt when entries are added
        self.overhead_ms, self.scale = 0.0, 1.0
        self.calibration: list[dict[str, Any]] = []
        self.machine: dict[str, Any] = {}

    # ---------------------------------------------------------------- the table
    def _widths(self, config: Mapping[str, int] | str | None) -> tuple[np.ndarray, np.ndarray]:
        rows = self.cost.layer_table(config)
        return np.array([r["in"] for r in rows]), np.array([r["out"] for r in rows])

    def _axes(self) -> dict[Geometry, tuple[list[int], list[int]]]:
        """Per geometry, the grid of input and output widths spanning every config of the space."""
        (lo_in, lo_out), (hi_in, hi_out) = self._widths(self.space.smallest()), self._widths(self.space.largest())
        spans: dict[Geometry, list[int]] = {}
        for i, geometry in enumerate(self.geometries):
            span = spans.setdefault(geometry, [lo_in[i], hi_in[i], lo_out[i], hi_out[i]])
            span[:] = [min(span[0], lo_in[i]), max(span[1], hi_in[i]), min(span[2], lo_out[i]), max(span[3], hi_out[i])]
        axes = {}
        for geometry, (a, b, c, d) in spans.items():
            cin = _grid(a, b, self.grid)
            axes[geometry] = (cin, cin) if geometry.channelwise else (cin, _grid(c, d, self.grid))
        return axes

    def table_keys(self) -> list[tuple[Geometry, int, int]]:
        """Every (geometry, C_in, C_out) the table measures."""
        keys = []
        for geometry, (cins, couts) in self.axes.items():
            pairs = zip(cins, couts) if geometry.channelwise else ((i, o) for i in cins for o in couts)
            keys += [(geometry, cin, cout) for cin, cout in pairs]
        return keys

    def build_table(self, budget_ms: float = 15.0) -> float:
        """Time every missing table entry on this machine; returns the seconds it took."""
        start = time.perf_counter()
        with cpu_threads(self.threads), torch.no_grad():
            for geometry, cin, cout in self.table_keys():
                key = geometry.key(cin, cout)
                if key not in self.entries:
                    self.entries[key] = measure_layer(*geometry.module(cin, cout), budget_ms=budget_ms)
        from gancomp_lite.bench import machine_info

        self.machine = {**machine_info(), "threads": self.threads, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        return time.perf_counter() - start

    def _packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per layer call, its grid of input widths, of output widths and of table entries, padded to
        `grid` points by repeating the last one, so that every call interpolates in one numpy pass."""
        if self._pack is None or self._pack[0] != len(self.entries):
            size = max(self.grid, 2)

            def pad(values: list) -> list:
                return list(values) + [values[-1]] * (size - len(values))

            xs_in, xs_out, values = [], [], []
            try:
                for g in self.geometries:
                    cins, couts = self.axes[g]
                    if g.channelwise:
                        rows = [[self.entries[g.key(c, c)]] * size for c in cins]
                    else:
                        rows = [pad([self.entries[g.key(i, o)] for o in couts]) for i in cins]
                    xs_in.append(pad(cins))
                    xs_out.append(pad(couts))
                    values.append(pad(rows))
            except KeyError as err:
                raise ValueError(f"the latency table has no entry {err}; run build_table() (or load a table built "
                                 f"for {self.arch} at {self.size}px with knobs {self.knobs})") from err
            self._pack = (len(self.entries), np.array(xs_in, float), np.array(xs_out, float), np.array(values))
        return self._pack[1:]

    def _layer_times(self, w_in: np.ndarray, w_out: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of every call's entries at its widths (np.interp, vectorised over calls)."""
        xs_in, xs_out, values = self._packed()
        rows = np.arange(len(w_in))

        def segment(xs: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            j = np.clip((xs <= x[:, None]).sum(axis=1) - 1, 0, xs.shape[1] - 2)
            width = xs[rows, j + 1] - xs[rows, j]
            t = np.where(width > 0, (x - xs[rows, j]) / np.where(width > 0, width, 1), 0.0)
            return j, np.clip(t, 0.0, 1.0)

        a, ta = segment(xs_in, w_in.astype(float))
        b, tb = segment(xs_out, w_out.astype(float))
        low = values[rows, a, b] * (1 - tb) + values[rows, a, b + 1] * tb
        high = values[rows, a + 1, b] * (1 - tb) + values[rows, a + 1, b + 1] * tb
        return low * (1 - ta) + high * ta

    def layer_ms(self, config: Mapping[str, int] | str | None) -> list[dict[str, Any]]:
        """Per layer call: name, kind, widths and the table's milliseconds."""
        w_in, w_out = self._widths(config)
        return [{"layer": call.name, "kind": call.kind, "in": int(i), "out": int(o), "ms": float(ms)}
                for call, i, o, ms in zip(self.cost.calls, w_in, w_out, self._layer_times(w_in, w_out))]

    def table_ms(self, config: Mapping[str, int] | str | None) -> float:
        """The sum of the layers' table entries (no overhead)."""
        return float(self._layer_times(*self._widths(config)).sum())

    def predict(self, config: Mapping[str, int] | str | None) -> float:
        """Predicted milliseconds of one batch-1 forward of `config` (a dict or string; None = teacher)."""
        return self.overhead_ms + self.scale * self.table_ms(config)

    # ---------------------------------------------------------------- against real networks
    def measure(self, config: Mapping[str, int] | str | None, warmup: int = 3, runs: int = 10) -> float:
        """Fastest of `runs` forwards of the real sub-network, in ms (built untrained; eager; this predictor's threads)."""
        from gancomp_lite.bench import example_inputs
        from gancomp_lite.models.registry import build

        model = build(self.arch, config, self.size, **self.knobs).eval()
        with cpu_threads(self.threads):
            return min(time_forward(model, example_inputs(model, self.size), warmup, runs))

    def calibrate(self, configs: Sequence[Mapping[str, int]] | None = None, warmup: int = 3, runs: int = 10,
                  seed: int = 1) -> tuple[float, float]:
        """Fit ``measured = overhead_ms + scale * table sum`` by least squares over real sub-networks.

        `configs` default: the teacher, the smallest and two sampled with `seed`. The intercept is the
        fixed cost no table entry holds (Python, module calls); the scale, the layers' in-network cost
        over their stand-alone one plus the ops that grow with width but are not elastic layers
        (activations, adds, concatenations, pads). Returns (overhead_ms, scale).
        """
        rng = random.Random(f"latency-calibrate-{seed}")   # a stream of its own: no other sampler draws these
        configs = list(configs) if configs is not None else \
            [self.space.teacher(), self.space.smallest()] + [self.space.sample(rng) for _ in range(2)]
        self.calibration = [{"config": self.space.encode(c), "table_ms": self.table_ms(c),
                             "measured_ms": self.measure(c, warmup, runs)} for c in configs]
        table = np.array([c["table_ms"] for c in self.calibration])
        measured = np.array([c["measured_ms"] for c in self.calibration])
        scale, overhead = np.polyfit(table, measured, 1) if np.ptp(table) > 0 else (0.0, 0.0)
        if scale <= 0:                  # too few or too noisy points for a slope: a fixed overhead only
            scale, overhead = 1.0, float(np.mean(measured - table))
        self.scale, self.overhead_ms = float(scale), float(overhead)
        return self.overhead_ms, self.scale

    def evaluate(self, configs: Sequence[Mapping[str, int]] | None = None, n: int = 4, seed: int = 0,
                 warmup: int = 3, runs: int = 10) -> dict[str, Any]:
        """Predicted against measured latency of `configs` (default: `n` sampled with `seed`), with the
        mean absolute percentage error."""
        rng = random.Random(f"latency-evaluate-{seed}")
        configs = list(configs) if configs is not None else [self.space.sample(rng) for _ in range(n)]
        rows = []
        for config in configs:
            measured, predicted = self.measure(config, warmup, runs), self.predict(config)
            rows.append({"config": self.space.encode(config), "macs": self.cost.macs(config),
                         "predicted_ms": predicted, "measured_ms": measured,
                         "error": (predicted - measured) / measured})
        return {"rows": rows, "mape": mape([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])}

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {"version": TABLE_VERSION, "arch": self.arch, "size": self.size, "knobs": plain_knobs(self.knobs),
                "threads": self.threads, "grid": self.grid, "machine": self.machine, "overhead_ms": self.overhead_ms,
                "scale": self.scale, "calibration": self.calibration, "entries": self.entries}

    def save(self, path: str | Path) -> None:
        from gancomp_lite.checkpoint import atomic_write_bytes

        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=1) + "\n").encode())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyPredictor":
        if data.get("version") != TABLE_VERSION:
            raise ValueError(f"latency table version {data.get('version')!r}; this code reads version {TABLE_VERSION}")
        predictor = cls(data["arch"], data["size"], data["knobs"], data["threads"], data["grid"])
        predictor.entries = {k: float(v) for k, v in data["entries"].items()}
        predictor.overhead_ms, predictor.scale = float(data["overhead_ms"]), float(data["scale"])
        predictor.calibration = list(data["calibration"])
        predictor.machine = dict(data["machine"])
        return predictor

    @classmethod
    def load(cls, path: str | Path) -> "LatencyPredictor":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def for_arch(cls, arch: str, size: int, knobs: Mapping[str, Any] | None = None, table_path: str | Path | None = None,
                 threads: int | None = None, grid: int = 3) -> "LatencyPredictor":
        """The predictor of `arch` at `size` with `knobs` for `threads` threads.

        With a `table_path` that exists, its table is loaded (it must be for the same arch, size, knobs
        and threads); otherwise the table is built and calibrated on this machine (seconds for a quick
        model) and, with a `table_path`, saved there.
        """
        threads = threads or torch.get_num_threads()
        if table_path is not None and Path(table_path).is_file():
            predictor = cls.load(table_path)
            wanted = {"arch": arch, "size": size, "knobs": plain_knobs(knobs or {}), "threads": threads}
            found = {"arch": predictor.arch, "size": predictor.size, "knobs": plain_knobs(predictor.knobs),
                     "threads": predictor.threads}
            if wanted != found:
                raise ValueError(f"{table_path}: a latency table for {found}, not {wanted}; delete it or pass "
                                 f"another table_path to measure a new one")
            return predictor
        predictor = cls(arch, size, knobs, threads, grid)
        predictor.build_table()
        predictor.calibrate()
        if table_path is not None:
            predictor.save(table_path)
        return predictor


def plain_knobs(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """Knobs as JSON keeps them (tuples as lists, a set of separable groups as a sorted list), so a saved
    table's knobs compare equal to the ones it was built with."""
    def convert(value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"knob value {value!r} cannot be saved with a latency table")

    return json.loads(json.dumps(dict(knobs), default=convert))


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error (a fraction: 0.1 = 10 %)."""
    if len(predicted) != len(measured) or not measured:
        raise ValueError("mape needs as many predictions as measurements, at least one")
    return statistics.fmean(abs(p - m) / m for p, m in zip(predicted, measured))


def describe(predictor: LatencyPredictor) -> str:
    """One line: what the table covers and on which machine."""
    return (f"{predictor.arch} {predictor.size}px {predictor.knobs}: {len(predictor.entries)} entries, "
            f"{len(set(predictor.geometries))} layer geometries, overhead {predictor.overhead_ms:.2f} ms, "
            f"scale {predictor.scale:.2f}, "
            f"{predictor.threads} thread(s) on {predictor.machine.get('cpu', platform.processor())}")
