"""Measured speed: latency at batch 1, memory and file size of a teacher and its student, side by side.

Protocol (GAN Compression's ``latency.py``, the paper's Table 4): batch 1, ``warmup`` forwards that
are not timed, then ``runs`` timed forwards; we report their mean and median (the median resists
the interruptions of other jobs on a shared machine, so speedups use it). CPU timings use
``time.perf_counter`` at a stated thread count; CUDA timings use CUDA events after a synchronise.

Backends: ``eager`` (plain PyTorch), ``channels_last`` (eager, NHWC weights and input),
``torchscript`` (``torch.jit.trace`` then ``torch.jit.freeze``), ``onnxruntime`` (the TorchScript
ONNX exporter, then an ONNX Runtime session; its output is checked against PyTorch) and ``compile``
(``torch.compile``). A backend that cannot run is reported as ``"unavailable: <reason>"``.

Memory: parameter bytes; file size = bytes of the float32 state dict written by ``torch.save``;
peak activation memory = the highest net allocation during one forward beyond what was allocated
before it (weights and input excluded, output included). On CUDA that is ``max_memory_allocated``
minus the allocation before the forward; on the CPU, where torch keeps no peak statistics (and
``tracemalloc`` does not see torch's allocator), it is the running sum of the allocation and free
events recorded by ``torch.profiler(profile_memory=True)``.

Speedup = teacher latency / student latency (median); realised fraction = speedup / MACs ratio,
1.0 when time falls exactly with MACs.
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import itertools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from gancomp_lite.seeding import cpu_threads

BACKENDS = ("eager", "channels_last", "torchscript", "onnxruntime", "compile")
OUTPUT_TOLERANCE = 1e-3        # max |backend - eager PyTorch| on a [-1, 1] image before we call it a mismatch
FORWARD_LABEL = "gancomp::forward"


class BackendUnavailable(RuntimeError):
    """A backend cannot run this model here (missing package, export or compile failure)."""


# ------------------------------------------------------------------ timing
def example_inputs(model: nn.Module, size: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """What a generator's forward takes at batch 1: one image (TP-GAN and PIM then crop their parts at
    the template boxes, the same compute as with landmark boxes)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, getattr(model, "in_channels", 3), size, size, generator=generator) * 2 - 1
    return (x.to(device),)


def time_forward(fn: Callable[..., Any], inputs: Sequence[Any], warmup: int, runs: int,
                 device: str | torch.device = "cpu") -> list[float]:
    """Milliseconds of each of `runs` calls after `warmup` untimed ones (CUDA: events, synchronised)."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    cuda = torch.device(device).type == "cuda"
    with torch.no_grad():
        for _ in range(warmup):
            fn(*inputs)
        if cuda:
            torch.cuda.synchronize()
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(runs)]
            for start, end in events:
                start.record()
                fn(*inputs)
                end.record()
            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in events]
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(*inputs)
            times.append((time.perf_counter() - start) * 1e3)
        return times


@dataclass
class Timing:
    """One backend's latency (ms) and how far its output is from eager PyTorch."""
    backend: str
    status: str                       # "ok", "mismatch" (output differs) or "unavailable: <reason>"
    mean_ms: float | None = None
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    max_abs_diff: float | None = None

    @classmethod
    def from_times(cls, backend: str, times: Sequence[float], diff: float) -> "Timing":
        status = "ok" if diff <= OUTPUT_TOLERANCE else "mismatch"
        return cls(backend, status, statistics.fmean(times), statistics.median(times), min(times), max(times),
                   statistics.pstdev(times), diff)

    @property
    def ok(self) -> bool:
        return self.median_ms is not None


# ------------------------------------------------------------------ backends
def _silenced(fn: Callable[[], Any]) -> Any:
    """Tracing and the TorchScript ONNX exporter warn about every Python shape check; the outputs are checked instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def prepare_backend(model: nn.Module, inputs: tuple[torch.Tensor, ...], backend: str, threads: int
                    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """A callable running `model` on `backend`, and the inputs it takes; raises BackendUnavailable."""
    if backend == "eager":
        return model, inputs
    if backend == "channels_last":
        if inputs[0].dim() != 4:
            raise BackendUnavailable("channels_last needs a 4-d input")
        nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
        return nhwc, tuple(x.contiguous(memory_format=torch.channels_last) for x in inputs)
    if backend == "torchscript":
        try:
            with torch.no_grad():
                traced = _silenced(lambda: torch.jit.freeze(torch.jit.trace(model, inputs, check_trace=False)))
        except Exception as err:          # noqa: BLE001 - any tracing failure means "not on this backend"
            raise BackendUnavailable(f"torch.jit.trace failed: {type(err).__name__}: {err}") from err
        return traced, inputs
    if backend == "onnxruntime":
        return _onnxruntime(model, inputs, threads)
    if backend == "compile":
        try:
            compiled = torch.compile(model)
            with torch.no_grad():
                compiled(*inputs)                 # compile now, so a failure is reported, not timed
        except Exception as err:          # noqa: BLE001
            first_line = (str(err).strip().splitlines() or [""])[0]
            raise BackendUnavailable(f"torch.compile failed: {type(err).__name__}: {first_line}") from err
        return compiled, inputs
    raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")


def _onnxruntime(model: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
                 ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise BackendUnavailable("onnxruntime is not installed (pip install 'gancomp-lite[export]')") from err
    cuda = inputs[0].is_cuda
    providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    if providers[0] not in ort.get_available_providers():
        raise BackendUnavailable(f"onnxruntime has no {providers[0]} (available: {ort.get_available_providers()})")
    buffer = io.BytesIO()
    try:
        with torch.no_grad():
            # dynamo=False: the TorchScript exporter needs no onnxscript package
            _silenced(lambda: torch.onnx.export(model, inputs, buffer, dynamo=False, opset_version=17,
                                                input_names=[f"input{i}" for i in range(len(inputs))]))
    except Exception as err:              # noqa: BLE001
        raise BackendUnavailable(f"ONNX export failed: {type(err).__name__}: {err}") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(buffer.getvalue(), options, providers=providers)
    except Exception as err:              # noqa: BLE001 - an operator ONNX Runtime cannot load
        raise BackendUnavailable(f"ONNX Runtime cannot load the export: {type(err).__name__}: {err}") from err
    feed = {f"input{i}": x.detach().cpu().numpy() for i, x in enumerate(inputs)}   # CUDA: includes host copies

    def run(feed: dict) -> torch.Tensor:
        return torch.from_numpy(session.run(None, feed)[0])

    return run, (feed,)


def _max_abs_diff(output: Any, reference: torch.Tensor) -> float:
    return float((torch.as_tensor(output).float().cpu() - reference.float().cpu()).abs().max())


# ------------------------------------------------------------------ memory
def param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def file_bytes(model: nn.Module) -> int:
    """Bytes of the float32 state dict as ``torch.save`` writes it (what a shipped student weighs)."""
    buffer = io.BytesIO()
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}, buffer)
    return buffer.tell()


def peak_activation_bytes(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """Peak memory one no-grad forward allocates beyond what it starts with (see the module docstring)."""
    with torch.no_grad():
        model(*inputs)                           # allocator and lazy state warmed up
        if inputs[0].is_cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            model(*inputs)
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated() - base)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(*inputs)
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    return int(max(itertools.accumulate((e.nbytes() for e in events), initial=0)))


# ------------------------------------------------------------------ one model
@dataclass
class ModelReport:
    """Cost, memory and per-backend latency of one generator."""
    role: str                          # "teacher" or "student"
    arch: str
    config: str
    size: int
    knobs: dict[str, Any]
    weights: str                       # where the weights came from ("shipped quick teacher", a path, "random init")
    macs: int
    params: int
    convention: str
    param_bytes: int
    file_bytes: int
    peak_activation_bytes: int
    timings: dict[str, Timing] = field(default_factory=dict)

    def gmacs_per_s(self, backend: str) -> float | None:
        timing = self.timings.get(backend)
        return self.macs / 1e9 / (timing.median_ms / 1e3) if timing is not None and timing.ok else None


def bench_model(model: nn.Module, arch: str, size: int, knobs: Mapping[str, Any], config: Mapping[str, int] | None,
                role: str, weights: str, backends: Sequence[str] = ("eager",), warmup: int = 100, runs: int = 100,
                threads: int | None = None, device: str = "cpu", convention: str = "gancomp") -> ModelReport:
    """Measure one generator on every backend (built with ``registry.build(arch, config, size, **knobs)``)."""
    from gancomp_lite.cost import CostModel
    from gancomp_lite.models.registry import channel_space

    space = channel_space(arch, size, **knobs)
    config = space.teacher() if config is None else space.validate(config)
    cost = CostModel.for_arch(arch, size, **knobs).cost(config, convention)
    threads = threads or torch.get_num_threads()
    model = model.eval().to(device)
    inputs = example_inputs(model, size, device)
    with cpu_threads(threads):
        with torch.no_grad():
            reference = model(*inputs)
        report = ModelReport(role, arch, space.encode(config), size, dict(knobs), weights, cost.macs, cost.params,
                             convention, param_bytes(model), file_bytes(model), peak_activation_bytes(model, inputs))
        for backend in backends:
            try:
                fn, args = prepare_backend(model, inputs, backend, threads)
                with torch.no_grad():
                    try:
                        diff = _max_abs_diff(fn(*args), reference)
                    except Exception as err:      # noqa: BLE001 - prepared, but cannot run this model
                        raise BackendUnavailable(f"first run failed: {type(err).__name__}: {err}") from err
                report.timings[backend] = Timing.from_times(backend, time_forward(fn, args, warmup, runs, device), diff)
            except BackendUnavailable as err:
                report.timings[backend] = Timing(backend, f"unavailable: {err}")
    return report


# ------------------------------------------------------------------ roofline
def conv_throughput(threads: int | None = None, channels: int = 256, size: int = 64, kernel: int = 3,
                    warmup: int = 5, runs: int = 20, device: str = "cpu") -> dict[str, Any]:
    """The machine's rate on one large dense convolution (C -> C, k x k, stride 1, size x size): the roof
    a generator's achieved MACs/s is compared against."""
    conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2).eval().to(device)
    x = torch.randn(1, channels, size, size, device=device)
    with cpu_threads(threads):
        times = time_forward(conv, (x,), warmup, runs, device)
    macs = size * size * channels * channels * kernel * kernel
    median = statistics.median(times)
    return {"shape": f"{channels}->{channels} {kernel}x{kernel} conv at {size}x{size}", "macs": macs,
            "median_ms": median, "gmacs_per_s": macs / 1e9 / (median / 1e3), "threads": threads or saved}


def roofline_points(models: Sequence[ModelReport]) -> list[dict[str, Any]]:
    """One point per (model, backend that ran): what ``viz.bench.plot_roofline`` draws."""
    return [{"label": f"{m.role} {backend}", "macs": m.macs, "ms": t.median_ms}
            for m in models for backend, t in m.timings.items() if t.ok]


# ------------------------------------------------------------------ where the time goes
LAYER_KINDS = ("dense conv", "depthwise conv", "1x1 conv", "transposed conv", "norm", "activation", "other ops",
               "framework overhead")
_NORM_OPS = {"aten::instance_norm", "aten::batch_norm", "aten::layer_norm", "aten::group_norm"}
_ACTIVATION_OPS = {f"aten::{n}{s}" for n in ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "hardtanh", "elu",
                                              "silu", "hardswish") for s in ("", "_")}


def _op_kind(name: str, shapes: Sequence[Sequence[int]]) -> str:
    if name == "aten::conv_transpose2d":
        return "transposed conv"
    if name in ("aten::conv2d", "aten::convolution", "aten::_convolution"):
        x, w = (list(s) for s in shapes[:2])
        if len(w) == 4 and w[1] == 1 and x[1] > 1 and w[0] % x[1] == 0:
            return "depthwise conv"
        return "1x1 conv" if w[2:] == [1, 1] else "dense conv"
    if name in _NORM_OPS:
        return "norm"
    if name in _ACTIVATION_OPS:
        return "activation"
    return "other ops"


def time_by_layer_kind(model: nn.Module, inputs: tuple[torch.Tensor, ...], runs: int = 5, warmup: int = 3,
                       threads: int | None = None) -> dict[str, float]:
    """Milliseconds per forward spent in each of LAYER_KINDS, from torch.profiler.

    The ops the model's Python code calls directly (the children of one forward) are classified by
    name and shapes (a conv whose weight has one input channel per group is depthwise, a 1x1 kernel
    is pointwise); "framework overhead" is the forward's time outside them (Python, module calls,
    dispatch). The profiler itself adds a little to every op. Also returns "total".
    """
    with cpu_threads(threads), torch.no_grad():
        for _ in range(warmup):
            model(*inputs)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(runs):
                with record_function(FORWARD_LABEL):
                    model(*inputs)
    totals = dict.fromkeys(LAYER_KINDS, 0.0)
    forwards = [e for e in prof.events() if e.name == FORWARD_LABEL]
    for forward in forwards:
        inside = 0.0
        for op in forward.cpu_children:
            totals[_op_kind(op.name, op.input_shapes)] += op.cpu_time_total / 1e3
            inside += op.cpu_time_total / 1e3
        totals["framework overhead"] += forward.cpu_time_total / 1e3 - inside
    result = {kind: ms / len(forwards) for kind, ms in totals.items()}
    result["total"] = sum(result.values())
    return result


def macs_by_layer_kind(arch: str, config: Mapping[str, int] | str | None, size: int, convention: str = "gancomp",
                       **knobs) -> dict[str, int]:
    """The cost model's MACs split into the conv kinds of LAYER_KINDS (norm MACs: gancomp convention only)."""
    from gancomp_lite.cost import CostModel

    cost = CostModel.for_arch(arch, size, **knobs)
    kinds = {"conv": "dense conv", "depthwise": "depthwise conv", "convT": "transposed conv",
             "depthwise-convT": "transposed conv", "linear": "other ops", "instancenorm": "norm", "batchnorm": "norm"}
    totals = dict.fromkeys(LAYER_KINDS[:-1], 0)
    for call, row in zip(cost.calls, cost.layer_table(config, convention)):
        kind = "1x1 conv" if row["kind"] == "conv" and call.kernel == 1 else kinds[row["kind"]]
        totals[kind] += row["macs"]
    return totals


# ------------------------------------------------------------------ teacher vs student
@dataclass
class BenchReport:
    """Teacher and student measured in one run, with the machine they ran on."""
    models: list[ModelReport]
    device: str
    threads: int
    warmup: int
    runs: int
    machine: dict[str, Any]
    roofline: dict[str, Any] | None = None

    def comparison(self) -> list[dict[str, Any]]:
        """Per backend: student speedup over the teacher (median latency) and the realised fraction."""
        teacher = next(m for m in self.models if m.role == "teacher")
        rows = []
        for student in (m for m in self.models if m.role == "student"):
            ratio = teacher.macs / student.macs
            for backend, t in teacher.timings.items():
                s = student.timings.get(backend)
                if t.ok and s is not None and s.ok:
                    speedup = t.median_ms / s.median_ms
                    rows.append({"student": student.config, "backend": backend, "macs_ratio": ratio,
                                 "speedup": speedup, "realised_fraction": speedup / ratio})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "threads": self.threads, "warmup": self.warmup, "runs": self.runs,
                "machine": self.machine, "roofline": self.roofline, "models": [asdict(m) for m in self.models],
                "comparison": self.comparison()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per (model, backend): the CSV."""
        speedups = {(c["student"], c["backend"]): c for c in self.comparison()}
        rows = []
        for m in self.models:
            for backend, t in m.timings.items():
                c = speedups.get((m.config, backend), {}) if m.role == "student" else {}
                rows.append({"role": m.role, "arch": m.arch, "config": m.config, "size": m.size,
                             "weights": m.weights, "convention": m.convention, "macs": m.macs, "params": m.params,
                             "param_bytes": m.param_bytes, "file_bytes": m.file_bytes,
                             "peak_activation_bytes": m.peak_activation_bytes, "device": self.device,
                             "threads": self.threads, "backend": backend, "status": t.status, "mean_ms": t.mean_ms,
                             "median_ms": t.median_ms, "max_abs_diff": t.max_abs_diff,
                             "gmacs_per_s": m.gmacs_per_s(backend), "speedup": c.get("speedup"),
                             "realised_fraction": c.get("realised_fraction")})
        return rows

    def to_csv(self) -> str:
        out = io.StringIO()
        rows = self.rows()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def to_markdown(self) -> str:
        """Table 4 of the paper: latency and memory of teacher and student, per backend."""
        where = (f"{self.device}, {self.threads} thread(s)" if self.device == "cpu" else self.device) + \
                f", batch 1, {self.warmup} warm-up + {self.runs} timed runs"
        host = self.machine.get('cpu') or self.machine.get('platform')
        card = self.machine.get("gpu")
        lines = [f"Measured on {f'{card} (host {host})' if card else host} ({where}; "
                 f"load average {self.machine.get('load')}; torch {self.machine.get('torch')}). "
                 f"MACs: {self.models[0].convention} convention.", "",
                 "| model | config | MACs (G) | params (M) | file (MB) | peak act. (MB) | backend | mean (ms) "
                 "| median (ms) | GMAC/s | speedup | realised |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in self.rows():
            status = "" if row["status"] == "ok" else f" ({row['status']})"
            speedup = "-" if row["speedup"] is None else f"{row['speedup']:.2f}x"
            lines.append(
                f"| {row['role']} {row['arch']} {row['size']}px | {row['config']} | {row['macs'] / 1e9:.3f} | "
                f"{row['params'] / 1e6:.3f} | {row['file_bytes'] / 1e6:.2f} | {row['peak_activation_bytes'] / 1e6:.1f} | "
                f"{row['backend']}{status} | {_fmt(row['mean_ms'], '.2f')} | {_fmt(row['median_ms'], '.2f')} | "
                f"{_fmt(row['gmacs_per_s'], '.1f')} | {speedup} | {_fmt(row['realised_fraction'], '.2f')} |")
        if self.roofline:
            lines += ["", f"Roof: {self.roofline['shape']}, {self.roofline['gmacs_per_s']:.1f} GMAC/s "
                          f"({self.roofline['threads']} thread(s))."]
        return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the figures were measured on, with the load other jobs put on it."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "load": " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def load_models(arch: str, student: str | Path | None = None, config: str | None = None, size: int | None = None,
                knobs: Mapping[str, Any] | None = None, student_arch: str | None = None
                ) -> list[tuple[str, nn.Module, dict[str, Any], str]]:
    """(role, model, {"arch", "size", "knobs", "config"}, weights) of the teacher and the student.

    Without `size` and `knobs` the teacher is the shipped quick one; with either, the architecture is
    built at that size (default: the cost model's) with untrained weights (latency does not depend on
    their values). A `config` student is built at the teacher's size and knobs, untrained, as
    `student_arch` (default: the teacher's; GAN Compression compresses a ResNet-9 into a
    mobile-resnet9); a `student` path is a generator checkpoint at the teacher's size.
    """
    from gancomp_lite.checkpoint import read_manifest
    from gancomp_lite.cost import default_size
    from gancomp_lite.evaluate import load_generator
    from gancomp_lite.models.registry import build
    from gancomp_lite.teachers import load_teacher

    if size is None and not knobs:
        teacher, manifest = load_teacher(arch, "quick")
        size, knobs, weights = manifest["size"], dict(manifest["knobs"]), "shipped quick teacher"
    else:
        size, knobs, weights = size or default_size(arch), dict(knobs or {}), "random init"
        teacher = build(arch, None, size, **knobs)
    models = [("teacher", teacher, {"arch": arch, "size": size, "knobs": knobs, "config": None}, weights)]
    if student is not None:
        manifest = read_manifest(student)
        if manifest.get("size") != size:
            raise ValueError(f"{student}: a student at {manifest.get('size')}px cannot be compared with the "
                             f"{arch} teacher at {size}px")
        models.append(("student", load_generator(student),
                       {"arch": manifest["arch"], "size": size, "knobs": dict(manifest.get("knobs", {})),
                        "config": manifest.get("config")}, str(student)))
    elif config is not None:
        student_arch = student_arch or arch
        models.append(("student", build(student_arch, config, size, **knobs),
                       {"arch": student_arch, "size": size, "knobs": knobs, "config": config}, "random init"))
    return models


def bench(arch: str, student: str | Path | None = None, config: str | None = None, size: int | None = None,
          knobs: Mapping[str, Any] | None = None, backends: Sequence[str] = ("eager",), warmup: int = 100,
          runs: int = 100, threads: int | None = None, device: str = "cpu", convention: str = "gancomp",
          roofline: bool = False, student_arch: str | None = None) -> BenchReport:
    """Teacher (and student) of `arch` measured in one run; see ``load_models`` for what is built."""
    from gancomp_lite.models.registry import channel_space

    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    threads = threads or torch.get_num_threads()
    reports = []
    for role, model, info, weights in load_models(arch, student, config, size, knobs, student_arch):
        space = channel_space(info["arch"], info["size"], **info["knobs"])
        cfg = space.decode(info["config"]) if isinstance(info["config"], str) else info["config"]
        reports.append(bench_model(model, info["arch"], info["size"], info["knobs"], cfg, role, weights, backends, warmup,
                                   runs, threads, device, convention))
    roof = conv_throughput(threads, device=device) if roofline else None
    return BenchReport(reports, device, threads, warmup, runs, machine_info(device), roof)


# ------------------------------------------------------------------ `gancomp-lite bench`
def register(subparsers: argparse._SubParsersAction) -> None:
    from gancomp_lite.cost import CONVENTIONS, MAX_SIZE, _parse_knob
    from gancomp_lite.errors import device_name, int_in
    from gancomp_lite.models.registry import FAMILIES

    cmd = subparsers.add_parser("bench", help="latency, memory and file size of a teacher and its student (Table 4)")
    cmd.add_argument("--teacher", choices=sorted(FAMILIES), required=True, metavar="ARCH",
                     help="the teacher's arch: the shipped quick teacher, or built untrained with --size/--knob")
    which = cmd.add_mutually_exclusive_group()
    which.add_argument("--student", type=Path, default=None, help="a student generator checkpoint (.pt)")
    which.add_argument("--config", default=None, help="a student config string, built untrained at the teacher's knobs")
    cmd.add_argument("--student-arch", choices=sorted(FAMILIES), default=None, metavar="ARCH",
                     help="the --config student's arch (default: the teacher's), e.g. mobile-resnet9")
    cmd.add_argument("--size", type=int_in(4, MAX_SIZE), default=None, help="build the architecture at this size (untrained)")
    cmd.add_argument("--knob", type=_parse_knob, action="append", default=[], metavar="KEY=VALUE",
                     help="build the architecture with this knob, e.g. base=64 (repeatable; untrained)")
    cmd.add_argument("--backend", default="eager", help=f"comma-separated, from {','.join(BACKENDS)}")
    cmd.add_argument("--threads", type=int_in(1, 1024), default=None, help="CPU threads (default: torch's)")
    cmd.add_argument("--warmup", type=int_in(0), default=100, help="untimed forwards first (paper: 100)")
    cmd.add_argument("--runs", type=int_in(1), default=100, help="timed forwards (paper: 100)")
    cmd.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda (cuda:N)")
    cmd.add_argument("--convention", choices=CONVENTIONS, default="gancomp")
    cmd.add_argument("--roofline", action="store_true", help="also measure one large dense conv (the roof)")
    cmd.add_argument("--plot", type=Path, default=None, help="save the roofline figure here (implies --roofline)")
    cmd.add_argument("--csv", type=Path, default=None, help="write one row per model and backend to this CSV")
    out = cmd.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--markdown", action="store_true", help="print the Table-4-style markdown table")
    cmd.set_defaults(func=_bench_command)


def _bench_command(args: argparse.Namespace) -> int:
    from gancomp_lite.errors import InputError

    try:
        report = bench(args.teacher, args.student, args.config, args.size, dict(args.knob),
                       [b.strip() for b in args.backend.split(",") if b.strip()], args.warmup, args.runs,
                       args.threads, args.device, args.convention, roofline=args.roofline or args.plot is not None,
                       student_arch=args.student_arch)
    except (ValueError, TypeError) as err:      # bad config, knob or device; CheckpointError passes to cli.main
        raise InputError(str(err)) from err
    if args.csv is not None:
        args.csv.write_text(report.to_csv())
    if args.plot is not None:
        from gancomp_lite.viz.bench import plot_roofline

        plot_roofline(report.roofline["gmacs_per_s"], roofline_points(report.models),
                      report.models[0].convention).savefig(args.plot, dpi=120)
    if args.json:
        print(report.to_json())
    elif args.markdown:
        print(report.to_markdown())
    else:
        for m in report.models:
            for backend, t in m.timings.items():
                timing = f"mean {t.mean_ms:.2f} ms, median {t.median_ms:.2f} ms" if t.ok else t.status
                print(f"{m.role} {m.arch} {m.config} ({m.macs / 1e9:.3f} G MACs): {backend}: {timing}")
        for c in report.comparison():
            print(f"{c['backend']}: {c['speedup']:.2f}x faster for {c['macs_ratio']:.1f}x fewer MACs "
                  f"(realised fraction {c['realised_fraction']:.2f})")
    sys.stdout.flush()
    return 0
