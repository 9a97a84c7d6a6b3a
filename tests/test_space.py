"""ChannelSpace: choices, config strings, validation messages, sampling."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from gancomp_lite.models.registry import channel_space
from gancomp_lite.space import ChannelSpace, ConfigError


@pytest.fixture
def space() -> ChannelSpace:
    return ChannelSpace.uniform("toy", {"stem": 32, "trunk": 24, "up": 20}, step=8, multipliers={"trunk": 4})


def test_uniform_choices_are_multiples_of_the_step_up_to_the_teacher(space):
    choices = {g.name: g.choices for g in space.groups}
    assert choices == {"stem": (32, 24, 16, 8), "trunk": (24, 16, 8), "up": (20, 16, 8)}  # teacher kept first
    assert len(space) == 4 * 3 * 3 == len(list(space.all_configs()))
    assert space.teacher() == space.largest() == {"stem": 32, "trunk": 24, "up": 20}
    assert space.smallest() == {"stem": 8, "trunk": 8, "up": 8}


def test_min_width_narrows_every_group_and_impossible_steps_are_refused():
    narrow = ChannelSpace.uniform("toy", {"stem": 32, "up": 6}, step=4, min_width=12)
    assert {g.name: g.choices for g in narrow.groups} == {"stem": (32, 28, 24, 20, 16, 12), "up": (6,)}
    for step, min_width in ((0, None), (4, 0), (4, -4)):
        with pytest.raises(ConfigError, match="positive"):
            ChannelSpace.uniform("toy", {"stem": 32}, step=step, min_width=min_width)
    pim = channel_space("pim", base=8, step=1, min_width=2)
    assert set(pim.smallest().values()) == {2}
    with pytest.raises(ConfigError, match=r"'enc0': 1 is narrower than the space allows \(2\)"):
        pim.validate({**pim.smallest(), "enc0": 1})


def test_widths_apply_the_multipliers(space):
    assert space.widths({"stem": 16, "trunk": 8, "up": 8}) == {"stem": 16, "trunk": 32, "up": 8}


def test_encode_decode_round_trip(space):
    rng = random.Random(0)
    for _ in range(50):
        config = space.sample(rng)
        text = space.encode(config)
        assert text == "_".join(str(config[n]) for n in ("stem", "trunk", "up"))
        assert space.decode(text) == config


def test_gan_compression_strings_decode_on_the_mobile_resnet():
    mobile = channel_space("mobile-resnet9")
    config = mobile.decode("16_16_32_16_32_32_16_16")
    assert config["c2"] == 32 and mobile.widths(config)["c2"] == 128
    assert mobile.encode(config) == "16_16_32_16_32_32_16_16"


@pytest.mark.parametrize("text, pattern", [
    ("16_8", r"has 2 fields; expected 3 \(stem_trunk_up\)"),
    ("16_8_8_8", r"has 4 fields; expected 3"),
    ("16_x_8", r"every field must be an integer"),
    ("12_8_8", r"group 'stem': 12 is not an allowed step; allowed \[32, 24, 16, 8\]"),
    ("16_32_8", r"group 'trunk': 32 is wider than the teacher \(24\); allowed \[24, 16, 8\]"),
    ("16_8_0", r"group 'up': 0 must be positive; allowed \[20, 16, 8\]"),
    ("16_-8_8", r"group 'trunk': -8 must be positive"),
])
def test_impossible_strings_are_refused_naming_the_group(space, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        space.decode(text)


def test_dicts_with_missing_or_unknown_groups_are_refused(space):
    with pytest.raises(ConfigError, match=r"missing \['up'\], unknown \['down'\]"):
        space.validate({"stem": 8, "trunk": 8, "down": 8})


def test_uniform_sampling_covers_every_choice_evenly(space):
    rng = random.Random(1)
    counts = Counter(space.sample(rng)["stem"] for _ in range(4000))
    assert set(counts) == {32, 24, 16, 8}
    assert all(abs(n / 4000 - 0.25) < 0.03 for n in counts.values())


def test_sampling_is_deterministic_under_a_seed(space):
    def draws(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [space.encode(space.sample(rng)) for _ in range(20)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
