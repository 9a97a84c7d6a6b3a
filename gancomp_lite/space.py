"""Channel search spaces: named groups, their teacher widths and the widths a sub-network may choose.

A configuration is a dict ``{group: width}``; as a string it is the widths joined by ``_`` in
group order (GAN Compression's ``16_16_32_...``). A group may carry a multiplier (GAN
Compression's mobile ResNet stores ``c2`` and multiplies it by 4 to get the trunk width):
strings hold the stored values, ``widths()`` the real channel counts a model is built with.
"""
from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product


class ConfigError(ValueError):
    """A channel configuration is impossible for this space; the message names the group."""


@dataclass(frozen=True)
class Group:
    name: str
    teacher: int                 # the teacher's stored value
    choices: tuple[int, ...]     # allowed stored values, largest first
    multiplier: int = 1          # real channels = stored value * multiplier


@dataclass(frozen=True)
class ChannelSpace:
    arch: str
    groups: tuple[Group, ...]

    @classmethod
    def uniform(cls, arch: str, teacher: Mapping[str, int], step: int = 8, min_width: int | None = None,
                multipliers: Mapping[str, int] | None = None) -> "ChannelSpace":
        """Every group may take any multiple of `step` from `min_width` (default `step`) up to its teacher width
        (a group narrower than `min_width` keeps its teacher width only)."""
        if step < 1 or (min_width is not None and min_width < 1):
            raise ConfigError(f"{arch}: step and min_width must be positive, got step={step}, min_width={min_width}")
        groups = []
        lowest = min_width or step
        for name, width in teacher.items():
            choices = tuple(range(width - width % step, lowest - 1, -step)) or (width,)
            if choices[0] != width:
                choices = (width,) + choices
            groups.append(Group(name, width, choices, (multipliers or {}).get(name, 1)))
        return cls(arch, tuple(groups))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    def __len__(self) -> int:
        size = 1
        for group in self.groups:
            size *= len(group.choices)
        return size

    def teacher(self) -> dict[str, int]:
        return {g.name: g.teacher for g in self.groups}

    def largest(self) -> dict[str, int]:
        return {g.name: max(g.choices) for g in self.groups}

    def smallest(self) -> dict[str, int]:
        return {g.name: min(g.choices) for g in self.groups}

    def sample(self, rng: random.Random) -> dict[str, int]:
        """Each group drawn independently and uniformly (single-path one-shot sampling)."""
        return {g.name: rng.choice(g.choices) for g in self.groups}

    def all_configs(self) -> Iterator[dict[str, int]]:
        for values in product(*(g.choices for g in self.groups)):
            yield dict(zip(self.names, values))

    def widths(self, config: Mapping[str, int]) -> dict[str, int]:
        """Real channel counts of a (validated) stored config."""
        self.validate(config)
        return {g.name: config[g.name] * g.multiplier for g in self.groups}

    def validate(self, config: Mapping[str, int]) -> dict[str, int]:
        names = self.names
        missing = [n for n in names if n not in config]
        extra = [n for n in config if n not in names]
        if missing or extra:
            raise ConfigError(f"{self.arch} config needs groups {list(self.names)}; missing {missing}, unknown {extra}")
        for group in self.groups:
            value = config[group.name]
            if value not in group.choices:
                if value <= 0:
                    why = "must be positive"
                elif value > group.teacher:
                    why = f"is wider than the teacher ({group.teacher})"
                elif value < min(group.choices):
                    why = f"is narrower than the space allows ({min(group.choices)})"
                else:
                    why = "is not an allowed step"
                raise ConfigError(f"{self.arch} group {group.name!r}: {value} {why}; allowed {list(group.choices)}")
        return dict(config)

    def encode(self, config: Mapping[str, int]) -> str:
        self.validate(config)
        return "_".join(str(config[n]) for n in self.names)

    def decode(self, text: str) -> dict[str, int]:
        fields = text.strip().split("_")
        if len(fields) != len(self.groups):
            raise ConfigError(
                f"{self.arch} config string {text!r} has {len(fields)} fields; expected {len(self.groups)} "
                f"({'_'.join(self.names)})"
            )
        try:
            values = [int(f) for f in fields]
        except ValueError as err:
            raise ConfigError(f"{self.arch} config string {text!r}: every field must be an integer") from err
        return self.validate(dict(zip(self.names, values)))
