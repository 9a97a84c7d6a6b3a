"""MACs and parameters of any generator built from elastic layers, at any channel config, in microseconds.

How: run the model once at full width on the ``meta`` device (shapes only, no arithmetic) and record
every elastic layer call: its kind, kernel, input/output spatial size and channel layouts. A
layer's active input and output widths are sums of group widths (plus fixed parts such as RGB), i.e.
linear in the config vector ``g``::

    w_in = A_in @ g + c_in,   w_out = A_out @ g + c_out        (one row per layer call)
    MACs = sum_l  q_l * w_in_l * w_out_l  +  p_l * w_out_l

so MACs (and parameters) are a quadratic form ``g^T M g + v.g + k`` in the group widths: a config,
or a whole batch of them, costs a few tiny matrix products. Tests check the counts against
torchinfo, ``torch.utils.flop_counter`` and real extracted sub-networks.

Two conventions, to be named on every table and plot:

``gancomp``   GAN Compression's published numbers (torchprofile 0.0.1, the version its repo pins):
              conv = H_out*W_out*C_out*(C_in/groups)*k^2; a transposed conv is counted on its
              OUTPUT grid (H_out*W_out*C_out*C_in*k^2, stride^2 more than it computes); one MAC
              per InstanceNorm output element (even affine=False); linear = in*out;
              BatchNorm, biases, activations, pads and adds are free.
``physical``  the multiplications actually done: as above, but a transposed conv on its INPUT
              grid (H_in*W_in*C_in*C_out*k^2) and norms free. Biases are free here too (one add
              per output, not a multiply), so this equals ``torch.utils.flop_counter`` FLOPs / 2.

Parameters: every ``numel`` (weights, biases, norm affine), the same in both conventions.
Configs are a family's stored values (what ``build`` and config strings use; the channel space's
multipliers are applied here); a bare model without a space takes its layers' widths directly.
"""
from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from gancomp_lite.nn.elastic import (
    ChannelError,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLinear,
    ElasticMixin,
    elastic_layers,
)
from gancomp_lite.errors import InputError, check_range, int_in
from gancomp_lite.space import ChannelSpace, ConfigError

CONVENTIONS = ("gancomp", "physical")
MAX_SIZE, MAX_WIDTH = 4096, 4096                            # `macs` limits: beyond them the trace exhausts memory
DEFAULT_SIZES = {"resnet9": 256, "mobile-resnet9": 256}     # GAN Compression's; faces default to 128
WIDTH_KNOBS = ("ngf", "base", "gf_dim", "width")            # what --ngf maps to, first one a family has
COUNTED_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.InstanceNorm2d, nn.LayerNorm,
                 nn.GroupNorm)                              # must be elastic to be counted


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int


@dataclass(frozen=True)
class _Call:
    """One recorded call of an elastic layer (shapes at full width, batch 1)."""
    name: str
    kind: str
    kernel: int           # kh * kw (1 for linear and norms)
    in_pixels: int        # H_in * W_in (tokens for a linear layer)
    out_pixels: int       # H_out * W_out
    out_hw: tuple[int, ...]
    in_parts: tuple[tuple[str | None, int], ...]
    out_parts: tuple[tuple[str | None, int], ...]


def _kind(layer: nn.Module) -> str:
    if isinstance(layer, ElasticConvTranspose2d):
        return "depthwise-convT" if layer.depthwise else "convT"
    if isinstance(layer, ElasticConv2d):
        return "depthwise" if layer.depthwise else "conv"
    if isinstance(layer, ElasticLinear):
        return "linear"
    if isinstance(layer, ElasticInstanceNorm2d):
        return "instancenorm"
    if isinstance(layer, ElasticBatchNorm2d):
        return "batchnorm"
    raise TypeError(f"the cost model does not know elastic layer type {type(layer).__name__}")


def _mac_coefficients(call: _Call, convention: str) -> tuple[int, int]:
    """(q, p): MACs of this call = q * w_in * w_out + p * w_out."""
    kind, k = call.kind, call.kernel
    if kind == "conv":
        return call.out_pixels * k, 0
    if kind == "depthwise":
        return 0, call.out_pixels * k
    if kind in ("convT", "depthwise-convT"):
        pixels = call.out_pixels if convention == "gancomp" else call.in_pixels
        return (pixels * k, 0) if kind == "convT" else (0, pixels * k)
    if kind == "linear":
        return call.in_pixels, 0
    if kind == "instancenorm" and convention == "gancomp":
        return 0, call.out_pixels
    return 0, 0


def _param_coefficients(layer: nn.Module) -> tuple[int, int]:
    """(q, p): parameters of this layer = q * w_in * w_out + p * w_out."""
    kind = _kind(layer)
    bias = int(getattr(layer, "bias", None) is not None)
    if kind in ("conv", "convT", "linear"):
        kernel = int(np.prod(layer.weight.shape[2:])) if kind != "linear" else 1
        return kernel, bias
    if kind in ("depthwise", "depthwise-convT"):
        return 0, int(np.prod(layer.weight.shape[2:])) + bias
    affine = sum(p is not None for p in (layer.weight, layer.bias))
    return 0, affine


def _check_plain_layers(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, COUNTED_TYPES) and \
                not isinstance(module, ElasticMixin):
            raise TypeError(f"layer {name!r} is a plain {type(module).__name__}; the cost model counts elastic "
                            f"layers only (gancomp_lite.nn.elastic): build it with a fixed int layout instead")


class _MetaUnsupported(RuntimeError):
    """The model's forward cannot run on the meta device (and it has no real weights to run on)."""


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in model.parameters())


def _trace(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[_Call]:
    """Run `model` once at full width, batch 1, and record every elastic layer call.

    The run is on the ``meta`` device (shapes only). A model whose forward needs real values
    (say, it checks an index tensor) runs for real on the CPU instead, if it has real weights.
    """
    calls: list[_Call] = []

    def hook(name, layer, args, output):
        x = args[0]
        kind = _kind(layer)
        if kind == "linear":
            tokens = int(np.prod(x.shape[1:-1])) if x.dim() > 2 else 1
            calls.append(_Call(name, kind, 1, tokens, tokens, (), layer.in_parts, layer.out_parts))
            return
        kernel = int(np.prod(layer.weight.shape[2:])) if kind not in ("instancenorm", "batchnorm") else 1
        calls.append(_Call(name, kind, kernel, int(np.prod(x.shape[2:])), int(np.prod(output.shape[2:])),
                           tuple(output.shape[2:]), layer.in_parts, layer.out_parts))

    layers = list(elastic_layers(model))
    saved = [(layer, layer.active) for _, layer in layers]
    handles = [layer.register_forward_hook(lambda m, a, o, n=name: hook(n, m, a, o)) for name, layer in layers]
    training = model.training
    try:
        model.eval()
        for layer, _ in saved:
            layer.active = None
        with torch.no_grad():
            try:
                state = {n: torch.empty_like(t, device="meta") for n, t in
                         list(model.named_parameters()) + list(model.named_buffers())}
                torch.func.functional_call(model, state, tuple(x.to("meta") for x in inputs))
            except (RuntimeError, NotImplementedError) as err:
                if _on_meta(model):
                    raise _MetaUnsupported(str(err)) from err
                calls.clear()
                device = next(model.parameters()).device
                model(*(torch.zeros(x.shape, dtype=x.dtype, device=device) for x in inputs))
    finally:
        for handle in handles:
            handle.remove()
        for layer, active in saved:
            layer.active = active
        model.train(training)
    if not calls:
        raise ValueError(f"{type(model).__name__} ran no elastic layer: nothing to count")
    return calls


class _Quadratic:
    """sum_l q_l * w_in_l * w_out_l + p_l * w_out_l as a quadratic form in the group widths g.

    With w_in = a.g + c and w_out = b.g + d per row: g^T M g + v.g + k, where
    M = sum q a b^T, v = sum q (d a + c b) + p b, k = sum q c d + p d. Exact in int64.
    """

    def __init__(self, rows_in: tuple[np.ndarray, np.ndarray], rows_out: tuple[np.ndarray, np.ndarray],
                 coef: np.ndarray) -> None:
        (a, c), (b, d), q, p = rows_in, rows_out, coef[:, 0], coef[:, 1]
        self.matrix = (a * q[:, None]).T @ b
        self.vector = (q * d) @ a + (q * c) @ b + p @ b
        self.constant = int((q * c * d).sum() + (p * d).sum())

    def __call__(self, widths: np.ndarray) -> np.ndarray:
        return ((widths @ self.matrix) * widths).sum(axis=1) + widths @ self.vector + self.constant


class CostModel:
    """MACs and parameters of one model (at one input size) for any config, vectorised.

    ``CostModel(model, size)`` traces the model once; then ``macs(config)`` / ``params(config)``
    take microseconds, and ``macs_batch(array)`` evaluates thousands of configs at once.
    `space` (default: ``model.space`` if the model has one) gives the group order, the multipliers
    and the validation of stored configs; without one, configs are the layers' own widths.
    """

    def __init__(self, model: nn.Module, size: int | None = None, space: ChannelSpace | None = None,
                 inputs: tuple[torch.Tensor, ...] | None = None) -> None:
        _check_plain_layers(model)
        size = size if size is not None else getattr(model, "size", None)
        if inputs is None:
            if size is None:
                raise ValueError(f"CostModel needs the input size for {type(model).__name__} (no `size` attribute)")
            inputs = (torch.empty(1, getattr(model, "in_channels", 3), size, size),)
        self.size = size
        self.space = space if space is not None else getattr(model, "space", None)
        self.calls = _trace(model, inputs)
        modules = dict(elastic_layers(model))

        full: dict[str, int] = {}
        for layer in modules.values():
            for group, width in layer.in_parts + layer.out_parts:
                if group is not None:
                    full.setdefault(group, width)
        if self.space is not None:
            unknown = sorted(set(full) - set(self.space.names))
            if unknown:
                raise ValueError(f"layer groups {unknown} are not in the {self.space.arch} channel space")
            self.groups = self.space.names
            self._choices = [frozenset(g.choices) for g in self.space.groups]
            self.multipliers = np.array([g.multiplier for g in self.space.groups], dtype=np.int64)
        else:
            self.groups = tuple(full)
            self.multipliers = np.ones(len(full), dtype=np.int64)
        self.full = np.array([full.get(g, 0) for g in self.groups], dtype=np.int64)
        index = {g: i for i, g in enumerate(self.groups)}

        def layout_rows(layers_parts):
            a = np.zeros((len(layers_parts), len(self.groups)), dtype=np.int64)
            c = np.zeros(len(layers_parts), dtype=np.int64)
            for row, parts in enumerate(layers_parts):
                for group, width in parts:
                    if group is None:
                        c[row] += width
                    else:
                        a[row, index[group]] += 1
            return a, c

        self._call_in = layout_rows([c.in_parts for c in self.calls])
        self._call_out = layout_rows([c.out_parts for c in self.calls])
        self._macs_coef = {conv: np.array([_mac_coefficients(c, conv) for c in self.calls], dtype=np.int64)
                           for conv in CONVENTIONS}
        self._macs = {conv: _Quadratic(self._call_in, self._call_out, coef) for conv, coef in self._macs_coef.items()}
        self.layer_names = list(modules)
        self._param_coef = np.array([_param_coefficients(m) for m in modules.values()], dtype=np.int64)
        self._layer_params = (layout_rows([m.in_parts for m in modules.values()]),
                              layout_rows([m.out_parts for m in modules.values()]))
        self._params = _Quadratic(*self._layer_params, self._param_coef)
        elastic_params = {id(p) for m in modules.values() for p in m.parameters(recurse=False)}
        self.fixed_params = sum(p.numel() for p in model.parameters() if id(p) not in elastic_params)

    # --- configs -> group-width vectors ---------------------------------------------------------
    def vector(self, config: Mapping[str, int] | str | None) -> np.ndarray:
        """Real channel widths of `config` in group order (None: the traced model's own widths)."""
        if config is None:
            return self.full
        if isinstance(config, str):
            if self.space is None:
                raise ConfigError("a config string needs a channel space; pass a dict of layer widths")
            config = self.space.decode(config)
        try:
            values = [config[g] for g in self.groups]
        except KeyError:
            values = None
        if self.space is not None and (values is None or len(config) != len(values) or any(
                v not in allowed for v, allowed in zip(values, self._choices))):
            self.space.validate(config)          # the space's own message (group, allowed choices)
        if values is None:
            missing = [g for g in self.groups if g not in config]
            raise ConfigError(f"config has no width for groups {missing}; groups are {list(self.groups)}")
        vec = np.array(values, dtype=np.int64) * self.multipliers
        if not ((vec >= 1) & (vec <= self.full)).all():
            self._check_range(vec[None])
        return vec

    def array(self, configs: Sequence[Mapping[str, int]]) -> np.ndarray:
        """Stack configs (stored values) into the (n, groups) array the batch methods take."""
        return np.array([[c[g] for g in self.groups] for c in configs], dtype=np.int64).reshape(-1, len(self.groups))

    def _check_range(self, widths: np.ndarray) -> None:
        outside = (widths < 1) | (widths > self.full)
        if outside.any():
            bad = np.argwhere(outside)
            row, col = bad[0]
            raise ChannelError(f"group {self.groups[col]!r}: {widths[row, col]} channels is outside "
                               f"1..{self.full[col]} (the traced model's width)")

    def _widths(self, configs: np.ndarray) -> np.ndarray:
        widths = np.atleast_2d(np.asarray(configs, dtype=np.int64)) * self.multipliers
        if widths.shape[1] != len(self.groups):
            raise ConfigError(f"config arrays need {len(self.groups)} columns {list(self.groups)}, "
                              f"got shape {widths.shape}")
        self._check_range(widths)
        return widths

    # --- the API ---------------------------------------------------------------------------------
    def macs(self, config: Mapping[str, int] | str | None = None, convention: str = "gancomp") -> int:
        return int(self._quadratic(convention)(self.vector(config)[None])[0])

    def params(self, config: Mapping[str, int] | str | None = None) -> int:
        return int(self._params(self.vector(config)[None])[0]) + self.fixed_params

    def cost(self, config: Mapping[str, int] | str | None = None, convention: str = "gancomp") -> Cost:
        return Cost(self.macs(config, convention), self.params(config))

    def macs_batch(self, configs: np.ndarray, convention: str = "gancomp") -> np.ndarray:
        """MACs of many configs: `configs` is (n, groups) of stored values in ``self.groups`` order."""
        return self._quadratic(convention)(self._widths(configs))

    def params_batch(self, configs: np.ndarray) -> np.ndarray:
        return self._params(self._widths(configs)) + self.fixed_params

    def layer_table(self, config: Mapping[str, int] | str | None = None,
                    convention: str = "gancomp") -> list[dict]:
        """One row per layer call: name, kind, widths, output size, MACs and parameters (first call only)."""
        vec = self.vector(config)
        coef = self._coef(convention)
        w_in = self._call_in[0] @ vec + self._call_in[1]
        w_out = self._call_out[0] @ vec + self._call_out[1]
        (a, c), (b, d) = self._layer_params
        layer_params = self._param_coef[:, 0] * (a @ vec + c) * (b @ vec + d) + self._param_coef[:, 1] * (b @ vec + d)
        params = dict(zip(self.layer_names, layer_params.tolist()))
        rows = []
        for i, call in enumerate(self.calls):
            rows.append({"layer": call.name, "kind": call.kind, "in": int(w_in[i]), "out": int(w_out[i]),
                         "out_size": call.out_hw,
                         "macs": int(coef[i, 0] * w_in[i] * w_out[i] + coef[i, 1] * w_out[i]),
                         "params": params.pop(call.name, 0)})
        return rows

    def _coef(self, convention: str) -> np.ndarray:
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown MACs convention {convention!r}; choose one of {CONVENTIONS}")
        return self._macs_coef[convention]

    def _quadratic(self, convention: str) -> _Quadratic:
        self._coef(convention)
        return self._macs[convention]

    @classmethod
    def for_arch(cls, arch: str, size: int | None = None, **knobs) -> "CostModel":
        """The cost model of a registered family's teacher (built on the meta device: no weights)."""
        return _arch_cost_model(arch, size or default_size(arch), _freeze(knobs))


def default_size(arch: str) -> int:
    return DEFAULT_SIZES.get(arch, 128)


def _freeze(knobs: Mapping) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, set, frozenset)) else v) for k, v in knobs.items()))


@lru_cache(maxsize=32)
def _arch_cost_model(arch: str, size: int, knobs: tuple) -> CostModel:
    """Trace the teacher built on the meta device (no weights); on the CPU if its forward needs values."""
    from gancomp_lite.models.registry import _family, build

    kwargs = dict(knobs)
    space_knobs = dict(kwargs)
    if "size" in inspect.signature(_family(arch).space).parameters:
        space_knobs["size"] = size         # families whose groups depend on the resolution
    space = _family(arch).space(**space_knobs)
    try:
        with torch.device("meta"):
            model = build(arch, None, size, **kwargs)
        return CostModel(model, size, space=space)
    except _MetaUnsupported:
        return CostModel(build(arch, None, size, **kwargs), size, space=space)


def count(arch_or_model: str | nn.Module, config: Mapping[str, int] | str | None = None, size: int | None = None,
          convention: str = "gancomp", **knobs) -> Cost:
    """MACs and parameters of a registered arch (by name, with its knobs) or of a model, at `config`.

    `config`: a dict or string of stored values (None: the teacher, or the model's own widths).
    """
    if isinstance(arch_or_model, str):
        model = CostModel.for_arch(arch_or_model, size, **knobs)
    else:
        if knobs:
            raise TypeError(f"knobs {sorted(knobs)} only apply when counting a registered arch by name")
        model = CostModel(arch_or_model, size)
    return model.cost(config, convention)


def layer_table(arch_or_model: str | nn.Module, config: Mapping[str, int] | str | None = None,
                size: int | None = None, convention: str = "gancomp", **knobs) -> list[dict]:
    """Per-layer MACs (for plots); see ``CostModel.layer_table``."""
    if isinstance(arch_or_model, str):
        return CostModel.for_arch(arch_or_model, size, **knobs).layer_table(config, convention)
    return CostModel(arch_or_model, size).layer_table(config, convention)


# --- `gancomp-lite macs` -------------------------------------------------------------------------
def width_knob(arch: str) -> str:
    """The knob of `arch`'s family that sets its base width (what --ngf maps to)."""
    from gancomp_lite.models.registry import _family

    names = inspect.signature(_family(arch).space).parameters
    for knob in WIDTH_KNOBS:
        if knob in names:
            return knob
    raise ValueError(f"{arch} has no width knob among {WIDTH_KNOBS}; its knobs are {list(names)}")


def _parse_knob(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--knob expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def register(subparsers: argparse._SubParsersAction) -> None:
    from gancomp_lite.models.registry import FAMILIES

    macs = subparsers.add_parser("macs", help="MACs and parameters of a generator at a channel config")
    macs.add_argument("--arch", choices=sorted(FAMILIES), required=True)
    macs.add_argument("--config", default=None, help="config string, e.g. 16_16_32_16_32_32_16_16 (default: teacher)")
    macs.add_argument("--ngf", type=int_in(1, MAX_WIDTH), default=None,
                      help=f"the family's base width knob (ngf / base), 1-{MAX_WIDTH}")
    macs.add_argument("--size", type=int_in(1, MAX_SIZE), default=None,
                      help=f"input size, at most {MAX_SIZE} (default: 256 for ResNets, else 128)")
    macs.add_argument("--convention", choices=CONVENTIONS, default="gancomp")
    macs.add_argument("--knob", type=_parse_knob, action="append", default=[], metavar="KEY=VALUE",
                      help="any other knob of the family (repeatable)")
    macs.add_argument("--json", action="store_true", help="print JSON")
    macs.set_defaults(func=_macs_command)


def _macs_command(args: argparse.Namespace) -> int:
    knobs = dict(args.knob)
    size = default_size(args.arch) if args.size is None else args.size
    for key, value in knobs.items():     # a width or size knob past the limits would exhaust memory
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check_range(f"--knob {key}", value, None, MAX_WIDTH)
    if args.config is not None and not args.config.strip():
        raise InputError("--config is empty; give a config string such as the teacher's, or leave --config out")
    try:
        if args.ngf is not None:
            knobs[width_knob(args.arch)] = args.ngf
        model = CostModel.for_arch(args.arch, size, **knobs)
        config = model.space.teacher() if args.config is None else model.space.decode(args.config)
        cost = model.cost(config, args.convention)
    except (ValueError, TypeError) as err:       # ConfigError and ChannelError are ValueErrors
        raise InputError(str(err)) from err
    report = {"arch": args.arch, "config": model.space.encode(config), "size": size,
              "convention": args.convention, "macs": cost.macs, "params": cost.params, "knobs": knobs}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.arch} {report['config']} at {size}x{size} ({args.convention} convention): "
              f"{cost.macs:,} MACs ({cost.macs / 1e9:.3f} G), {cost.params:,} parameters ({cost.params / 1e6:.3f} M)")
    return 0
