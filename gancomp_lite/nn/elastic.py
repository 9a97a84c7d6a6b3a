"""Elastic layers: one set of weights, many widths.

A once-for-all supernet and its teacher are the same module; the supernet just runs its layers
at narrower *active* widths, using the first ``k`` channels of every weight tensor (GAN
Compression / OFA prefix slicing). Each layer names the *channel groups* of its input and
output: a group is a width shared by several layers (say, the trunk of a residual stack), and
a configuration assigns a width to every group.

Layers may read and write *concatenations* of groups (TP-GAN's decoder concatenates skip
connections): a layout such as ``("dec16", "enc16")`` means "the first ``full["dec16"]``
channels belong to group dec16, the next ``full["enc16"]`` to enc16". At a narrower config
the active channels are the first ``k`` of *each part*, so a weight slice picks a few ranges
instead of one prefix. Integer parts are fixed widths (RGB, one-hot views) that never shrink.

    conv = ElasticConv2d(("dec", "skip"), "dec", full={"dec": 64, "skip": 32}, kernel_size=3, padding=1)
    set_active(model, {"dec": 16, "skip": 8})   # now conv maps 24 -> 16 channels
    set_active(model, None)                     # back to full width

``extract(supernet, subnet)`` copies the active slices into a plain model built at the chosen
widths (the same class; its layers run at full width, so no slicing remains at run time).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

Part = Union[str, int]
Layout = Union[Part, tuple[Part, ...]]
Config = Mapping[str, int]


class ChannelError(ValueError):
    """An active width or an input tensor does not fit a layer's channel layout."""


def _parts(layout: Layout, full: Config) -> tuple[tuple[str | None, int], ...]:
    """Resolve a layout to ``((group or None, full width), ...)``."""
    items = layout if isinstance(layout, tuple) else (layout,)
    resolved = []
    for part in items:
        if isinstance(part, int):
            resolved.append((None, part))
        elif part in full:
            resolved.append((part, int(full[part])))
        else:
            raise ChannelError(f"channel group {part!r} has no width; known groups: {sorted(full)}")
    return tuple(resolved)


class ElasticMixin:
    """Shared bookkeeping: layouts, the active config, and the channel indices it selects."""

    in_parts: tuple[tuple[str | None, int], ...]
    out_parts: tuple[tuple[str | None, int], ...]
    active: Config | None

    def _init_layout(self, in_layout: Layout, out_layout: Layout, full: Config) -> None:
        self.in_parts = _parts(in_layout, full)
        self.out_parts = _parts(out_layout, full)
        self.active = None
        self._index_cache: dict[tuple, torch.Tensor | slice] = {}

    @staticmethod
    def _active_width(parts, active: Config | None) -> tuple[int, ...]:
        if active is None:
            return tuple(width for _, width in parts)
        widths = []
        for group, width in parts:
            if group is None:
                widths.append(width)
                continue
            if group not in active:
                raise ChannelError(f"active config has no width for channel group {group!r}")
            chosen = int(active[group])
            if not 0 < chosen <= width:
                raise ChannelError(f"group {group!r}: width {chosen} is outside 1..{width}")
            widths.append(chosen)
        return tuple(widths)

    def in_width(self, active: Config | None = None) -> int:
        return sum(self._active_width(self.in_parts, active if active is not None else self.active))

    def out_width(self, active: Config | None = None) -> int:
        return sum(self._active_width(self.out_parts, active if active is not None else self.active))

    def _index(self, parts, active: Config | None, device: torch.device) -> torch.Tensor | slice:
        """Channel indices of the active part prefixes; a plain slice when that is all it takes."""
        widths = self._active_width(parts, active)
        if len(parts) == 1:
            return slice(0, widths[0])
        key = (id(parts), widths, device)
        if key not in self._index_cache:
            ranges, offset = [], 0
            for (_, full_width), width in zip(parts, widths):
                ranges.append(torch.arange(offset, offset + width, device=device))
                offset += full_width
            self._index_cache[key] = torch.cat(ranges)
        return self._index_cache[key]

    def _check_input(self, x: torch.Tensor, dim: int = 1) -> None:
        expected = self.in_width()
        if x.dim() <= max(dim, -dim - 1) or x.shape[dim] != expected:
            names = [group or str(width) for group, width in self.in_parts]
            raise ChannelError(
                f"{type(self).__name__} expects {expected} input channels on dim {dim} (layout {names}) "
                f"but got a tensor of shape {tuple(x.shape)}"
            )


def _take(tensor: torch.Tensor, dim: int, index: torch.Tensor | slice) -> torch.Tensor:
    if isinstance(index, slice):
        return tensor.narrow(dim, 0, index.stop)
    return tensor.index_select(dim, index)


class ElasticConv2d(nn.Conv2d, ElasticMixin):
    """Conv2d over channel groups; ``depthwise=True`` makes it a per-channel (groups = channels) conv."""

    def __init__(self, in_layout: Layout, out_layout: Layout, full: Config, kernel_size: int,
                 stride: int = 1, padding: int | None = None, bias: bool = True, depthwise: bool = False,
                 padding_mode: str = "zeros") -> None:
        in_parts, out_parts = _parts(in_layout, full), _parts(out_layout, full)
        cin, cout = sum(w for _, w in in_parts), sum(w for _, w in out_parts)
        if depthwise and in_parts != out_parts:
            raise ChannelError(f"a depthwise conv keeps its layout, got {in_layout} -> {out_layout}")
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(cin, cout, kernel_size, stride, padding, bias=bias,
                         groups=cin if depthwise else 1, padding_mode=padding_mode)
        self.depthwise = depthwise
        self._init_layout(in_layout, out_layout, full)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return super().forward(x)
        self._check_input(x)
        out_index = self._index(self.out_parts, self.active, x.device)
        weight = _take(self.weight, 0, out_index)
        if not self.depthwise:
            weight = _take(weight, 1, self._index(self.in_parts, self.active, x.device))
        bias = None if self.bias is None else _take(self.bias, 0, out_index)
        groups = x.shape[1] if self.depthwise else 1
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)


class ElasticConvTranspose2d(nn.ConvTranspose2d, ElasticMixin):
    """Transposed conv (upsampling) over channel groups; weight layout is (in, out, k, k).

    ``depthwise=True`` upsamples each channel on its own (groups = channels, weight (C, 1, k, k)),
    the first half of a separable upsampling layer.
    """

    def __init__(self, in_layout: Layout, out_layout: Layout, full: Config, kernel_size: int,
                 stride: int = 2, padding: int = 1, output_padding: int = 1, bias: bool = True,
                 depthwise: bool = False) -> None:
        in_parts, out_parts = _parts(in_layout, full), _parts(out_layout, full)
        cin, cout = sum(w for _, w in in_parts), sum(w for _, w in out_parts)
        if depthwise and in_parts != out_parts:
            raise ChannelError(f"a depthwise transposed conv keeps its layout, got {in_layout} -> {out_layout}")
        super().__init__(cin, cout, kernel_size, stride, padding, output_padding, bias=bias,
                         groups=cin if depthwise else 1)
        self.depthwise = depthwise
        self._init_layout(in_layout, out_layout, full)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if self.active is None:
            return super().forward(x, output_size)
        self._check_input(x)
        out_index = self._index(self.out_parts, self.active, x.device)
        weight = _take(self.weight, 0, self._index(self.in_parts, self.active, x.device))
        if not self.depthwise:
            weight = _take(weight, 1, out_index)
        bias = None if self.bias is None else _take(self.bias, 0, out_index)
        groups = x.shape[1] if self.depthwise else 1
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding,
                                  groups, self.dilation)


class ElasticLinear(nn.Linear, ElasticMixin):
    """Linear layer over channel groups (e.g. TP-GAN's identity fc, CR-GAN's latent heads)."""

    def __init__(self, in_layout: Layout, out_layout: Layout, full: Config, bias: bool = True) -> None:
        cin = sum(w for _, w in _parts(in_layout, full))
        cout = sum(w for _, w in _parts(out_layout, full))
        super().__init__(cin, cout, bias=bias)
        self._init_layout(in_layout, out_layout, full)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return super().forward(x)
        self._check_input(x, dim=-1)
        out_index = self._index(self.out_parts, self.active, x.device)
        weight = _take(_take(self.weight, 0, out_index), 1, self._index(self.in_parts, self.active, x.device))
        bias = None if self.bias is None else _take(self.bias, 0, out_index)
        return F.linear(x, weight, bias)


class ElasticBatchNorm2d(nn.BatchNorm2d, ElasticMixin):
    """BatchNorm whose affine parameters and running statistics are sliced like the channels."""

    def __init__(self, layout: Layout, full: Config, **kwargs) -> None:
        super().__init__(sum(w for _, w in _parts(layout, full)), **kwargs)
        self._init_layout(layout, layout, full)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return super().forward(x)
        self._check_input(x)
        index = self._index(self.in_parts, self.active, x.device)
        training = self.training or self.running_mean is None
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        mean = None if self.running_mean is None else _take(self.running_mean, 0, index)
        var = None if self.running_var is None else _take(self.running_var, 0, index)
        weight = None if self.weight is None else _take(self.weight, 0, index)
        bias = None if self.bias is None else _take(self.bias, 0, index)
        out = F.batch_norm(x, mean, var, weight, bias, training, factor, self.eps)
        if self.training and mean is not None and not isinstance(index, slice):
            with torch.no_grad():   # index_select copied the stats: write the updated ones back
                self.running_mean[index] = mean
                self.running_var[index] = var
        return out


class ElasticInstanceNorm2d(nn.InstanceNorm2d, ElasticMixin):
    """InstanceNorm that declares its channel layout (so costs and slices can be derived from it)."""

    def __init__(self, layout: Layout, full: Config, affine: bool = False, **kwargs) -> None:
        super().__init__(sum(w for _, w in _parts(layout, full)), affine=affine, **kwargs)
        self._init_layout(layout, layout, full)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None or not self.affine:
            return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        self._check_input(x)
        index = self._index(self.in_parts, self.active, x.device)
        return F.instance_norm(x, None, None, _take(self.weight, 0, index), _take(self.bias, 0, index),
                               True, 0.0, self.eps)


ELASTIC_TYPES = (ElasticConv2d, ElasticConvTranspose2d, ElasticLinear, ElasticBatchNorm2d, ElasticInstanceNorm2d)


def elastic_layers(model: nn.Module) -> Iterable[tuple[str, ElasticMixin]]:
    return ((name, m) for name, m in model.named_modules() if isinstance(m, ElasticMixin))


def set_active(model: nn.Module, config: Config | None) -> None:
    """Run every elastic layer of `model` at the widths of `config` (None: full width)."""
    frozen = None if config is None else dict(config)
    for _, layer in elastic_layers(model):
        layer.active = frozen


def _copy_slice(source: torch.Tensor, target: torch.Tensor, indices: list[torch.Tensor | slice | None]) -> None:
    sliced = source
    for dim, index in enumerate(indices):
        if index is not None:
            sliced = _take(sliced, dim, index)
    if sliced.shape != target.shape:
        raise ChannelError(f"cannot copy a {tuple(sliced.shape)} slice into a {tuple(target.shape)} tensor")
    target.copy_(sliced)


@torch.no_grad()
def extract(supernet: nn.Module, subnet: nn.Module, config: Config) -> nn.Module:
    """Copy the weights `supernet` uses at `config` into `subnet` (the same class built at those widths).

    Every parameter and buffer of the subnet is filled: elastic layers get their active slices,
    everything else (fixed-width layers) is copied whole. Returns `subnet`.
    """
    source_modules = dict(supernet.named_modules())
    for name, target in subnet.named_modules():
        if name not in source_modules:
            raise ChannelError(f"subnet layer {name!r} has no counterpart in the supernet")
        source = source_modules[name]
        own = list(target.named_parameters(recurse=False)) + list(target.named_buffers(recurse=False))
        for pname, tensor in own:
            src = getattr(source, pname)
            if not isinstance(source, ElasticMixin) or tensor.dim() == 0:
                _copy_slice(src, tensor, [])
                continue
            dev = src.device
            out_i = source._index(source.out_parts, config, dev)
            in_i = source._index(source.in_parts, config, dev)
            if isinstance(source, ElasticConvTranspose2d) and pname == "weight":
                order = [in_i] if source.depthwise else [in_i, out_i]
            elif pname == "weight" and tensor.dim() > 1 and not getattr(source, "depthwise", False):
                order = [out_i, in_i]
            else:
                order = [out_i]
            try:
                _copy_slice(src, tensor, order)
            except ChannelError as err:
                raise ChannelError(f"layer {name!r} {pname}: {err} (is `config` in real channel widths "
                                   f"and was the subnet built at it?)") from err
    return subnet
