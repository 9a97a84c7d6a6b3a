"""gancomp_lite.latency: layer geometries from the cost model's trace, the table, the predictor, JSON."""
from __future__ import annotations

import json

import pytest

from gancomp_lite import latency as L

TINY = {"ngf": 8, "step": 4}


@pytest.fixture(scope="module")
def tiny() -> L.LatencyPredictor:
    """A measured table of a 16x16 ResNet-9 (milliseconds to build)."""
    predictor = L.LatencyPredictor("resnet9", 16, TINY, threads=1)
    predictor.build_table(budget_ms=2.0)
    return predictor


def test_geometries_follow_the_layers():
    predictor = L.LatencyPredictor("resnet9", 64, {"ngf": 24, "step": 4}, threads=1)
    by_name = {call.name: g for call, g in zip(predictor.cost.calls, predictor.geometries)}
    stem, down1, up1 = by_name["stem.0"], by_name["down1.0"], by_name["up1.0"]
    assert (stem.kind, stem.kernel, stem.input, stem.padding_mode) == ("conv", (7, 7), (64, 64), "reflect")
    assert (down1.stride, down1.input) == ((2, 2), (64, 64))
    assert (up1.kind, up1.stride, up1.input, up1.output_padding) == ("convT", (2, 2), (16, 16), (1, 1))
    assert down1.key(24, 48) == "conv|24|48|3x3|2x2|1|64x64|p1x1|op0x0|zeros|bias1|affine0"


def test_non_square_part_patches_keep_their_shape():
    predictor = L.LatencyPredictor("tpgan", 64, {"base": 8, "step": 4}, threads=1)
    shapes = {g.input for call, g in zip(predictor.cost.calls, predictor.geometries) if call.name.startswith("rotators.nose.c0")}
    assert (16, 20) in shapes                      # the nose is 32 x 40 at 128 px, scaled by 64 / 128


def test_depthwise_entries_have_one_group_per_channel():
    predictor = L.LatencyPredictor("mobile-resnet9", 16, TINY, threads=1)
    keys = [g.key(cin, cout) for g, cin, cout in predictor.table_keys() if g.kind == "depthwise"]
    assert keys and all(key.split("|")[1] == key.split("|")[2] == key.split("|")[5] for key in keys)


def test_measured_table_covers_every_config_with_positive_times(tiny):
    # Measured times of a 16x16 model are noise-dominated on a shared CI machine, so only coverage
    # and positivity are asserted here; the ordering is checked on a deterministic table below.
    space = tiny.space
    assert len(tiny.entries) == len(tiny.table_keys())
    assert all(ms > 0 for ms in tiny.entries.values())
    teacher = tiny.predict(space.teacher())
    assert teacher > 0 and tiny.predict(space.smallest()) > 0
    assert tiny.predict(space.encode(space.teacher())) == teacher
    rows = tiny.layer_ms("4_4_8_4_8_8_4_4")
    assert len(rows) == len(tiny.cost.calls) and all(r["ms"] > 0 for r in rows)


def test_prediction_grows_with_the_widths_when_layer_time_does():
    fake = L.LatencyPredictor("resnet9", 16, TINY, threads=1)
    for geometry, cin, cout in fake.table_keys():
        fake.entries[geometry.key(cin, cout)] = 0.1 + 1e-3 * cin * cout
    space = fake.space
    assert 0 < fake.predict(space.smallest()) < fake.predict("4_4_8_4_8_8_4_4") < fake.predict(space.teacher())


def test_interpolation_is_exact_for_time_linear_in_cin_times_cout(tiny):
    fake = L.LatencyPredictor("resnet9", 16, TINY, threads=1)
    for geometry, cin, cout in fake.table_keys():
        fake.entries[geometry.key(cin, cout)] = 0.5 + 1e-3 * cin * cout
    config = {"c0": 4, "c1": 8, "c2": 4, "c3": 8, "c4": 4, "c5": 8, "c6": 4, "c7": 8}
    for row in fake.layer_ms(config):
        assert row["ms"] == pytest.approx(0.5 + 1e-3 * row["in"] * row["out"])


def test_missing_table_says_what_to_do():
    with pytest.raises(ValueError, match="build_table"):
        L.LatencyPredictor("resnet9", 16, TINY, threads=1).predict(None)


def test_calibration_fits_overhead_and_scale(tiny, monkeypatch):
    monkeypatch.setattr(tiny, "measure", lambda config, warmup=3, runs=10: 2.0 + 3.0 * tiny.table_ms(config))
    overhead, scale = tiny.calibrate()
    assert (overhead, scale) == (pytest.approx(2.0), pytest.approx(3.0))
    assert len(tiny.calibration) == 4
    report = tiny.evaluate(n=3)
    assert report["mape"] == pytest.approx(0.0, abs=1e-9) and len(report["rows"]) == 3


def test_table_round_trips_through_json(tiny, tmp_path, monkeypatch):
    tiny.overhead_ms, tiny.scale = 0.25, 1.5
    path = tmp_path / "table.json"
    tiny.save(path)
    assert json.loads(path.read_text())["entries"] == tiny.entries

    def no_measuring(*args, **kwargs):
        raise AssertionError("a saved table is loaded, not measured again")

    monkeypatch.setattr(L, "measure_layer", no_measuring)
    loaded = L.LatencyPredictor.for_arch("resnet9", 16, TINY, table_path=path, threads=1)
    assert loaded.to_dict() == tiny.to_dict()
    config = {"c0": 4, "c1": 8, "c2": 4, "c3": 8, "c4": 4, "c5": 8, "c6": 4, "c7": 8}
    assert loaded.predict(config) == tiny.predict(config)
    with pytest.raises(ValueError, match="not"):
        L.LatencyPredictor.for_arch("resnet9", 16, TINY, table_path=path, threads=2)


def test_measured_predictor_is_close_on_the_tiny_model(tiny):
    tiny.calibrate(runs=5)
    assert tiny.evaluate(n=3, runs=5)["mape"] < 1.0        # loose: a shared CPU; docs/benchmark.md has the figure


def test_quick_tpgan_table_builds_in_under_a_minute():
    predictor = L.LatencyPredictor("tpgan", 64, {"base": 8, "step": 4}, threads=1)
    assert predictor.build_table() < 60


def test_knobs_with_a_set_are_saved_and_matched(tmp_path, monkeypatch):
    knobs = {"ngf": 8, "step": 4, "separable": frozenset({"c3", "c0"})}
    predictor = L.LatencyPredictor("resnet9", 16, knobs, threads=1)
    predictor.entries = {geometry.key(cin, cout): 1.0 for geometry, cin, cout in predictor.table_keys()}
    predictor.save(tmp_path / "t.json")
    monkeypatch.setattr(L, "measure_layer", lambda *a, **k: pytest.fail("a saved table is not measured again"))
    loaded = L.LatencyPredictor.for_arch("resnet9", 16, knobs, table_path=tmp_path / "t.json", threads=1)
    assert loaded.knobs["separable"] == ["c0", "c3"] and loaded.predict(None) == predictor.predict(None)


def test_mape():
    assert L.mape([11.0, 9.0], [10.0, 10.0]) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        L.mape([1.0], [])
