from pathlib import Path

import pytest

from conftest import write_image
from data_tools.caspeal import load_caspeal, parse_name
from data_tools.protocol import DataError


def name(subject="000001", light="IEU+00", pose="PM+00", expr="EN", acc="A0", gender="MY"):
    return f"{gender}_{subject}_{light}_{pose}_{expr}_{acc}_D0_T0_BB_M0_R1_S0.tif"


def make_caspeal(root, subjects=("000001", "000002")):
    n = 0
    for subject in subjects:
        for pose in ("PM+00", "PM+22", "PM-45", "PM+67", "PU+22", "PD-22"):
            n += 1
            write_image(root / "POSE" / subject / name(subject, pose=pose), (12, 16), n, mode="L")
        # frontal shots of other subsets, which must not become the target
        write_image(root / "LIGHTING" / name(subject, light="IFD-45"), (12, 16), n + 100, mode="L")
        write_image(root / "EXPRESSION" / name(subject, expr="EL"), (12, 16), n + 200, mode="L")


def test_parse_all_fields():
    parsed = parse_name(Path("FO_000123_IFD-45_PU-67_ES_A3_D1_T2_BY_M0_R1_S0.tif"))
    assert (parsed.gender, parsed.age, parsed.subject) == ("F", "O", "000123")
    assert (parsed.lighting, parsed.pitch, parsed.yaw, parsed.pose) == ("IFD-45", "U", -67, "PU-67")
    assert (parsed.expression, parsed.accessory, parsed.distance, parsed.session, parsed.background) == \
        ("surprise", 3, 1, 2, "Y")


@pytest.mark.parametrize("bad, rule", [
    ("MY_000001_IEU+00_PM+45_EN_A0_D0_T0.tif", "12"),
    ("MY_000001_IEU+00_PX+45_EN_A0_D0_T0_BB_M0_R1_S0.tif", "pose"),
    ("MY_000001_IEU+00_PM+50_EN_A0_D0_T0_BB_M0_R1_S0.tif", "yaw 50"),
    ("XY_000001_IEU+00_PM+45_EN_A0_D0_T0_BB_M0_R1_S0.tif", "gender"),
])
def test_bad_names(tmp_path, bad, rule):
    with pytest.raises(DataError, match=rule) as err:
        parse_name(tmp_path / bad)
    assert bad in str(err.value)


def test_pose_subset_pairs_with_normal_light_neutral_frontal(tmp_path):
    make_caspeal(tmp_path)
    records = load_caspeal(tmp_path)
    assert len(records) == 2 * 4 and not records.skipped        # PM+00 (self) + PM+22/-45/+67
    for r in records:
        assert r.frontal.name == name(r.identity)
        assert r.frontal_illumination == "IEU+00" and r.camera.startswith("PM")
    assert sorted({r.yaw for r in records}) == [-45, 0, 22, 67]
    every_pitch = load_caspeal(tmp_path, pitches=("U", "M", "D"), include_frontal=False)
    assert sorted({r.extra["pitch"] for r in every_pitch}) == ["D", "M", "U"] and len(every_pitch) == 2 * 5


def test_grayscale_is_read_as_three_equal_channels(tmp_path):
    from data_tools.dataset import FaceDataset

    make_caspeal(tmp_path, subjects=("000001",))
    sample = FaceDataset(load_caspeal(tmp_path), size=8)[1]
    assert sample["profile"].shape == (3, 8, 8)
    assert (sample["profile"][0] == sample["profile"][1]).all() and (sample["profile"][1] == sample["profile"][2]).all()


def test_subject_without_frontal_and_bad_files(tmp_path):
    make_caspeal(tmp_path)
    write_image(tmp_path / "POSE" / "000003" / name("000003", pose="PM+45"), (12, 16), 9, mode="L")
    (tmp_path / "POSE" / "junk_name.tif").write_bytes(b"x")
    with pytest.raises(DataError, match="12"):
        load_caspeal(tmp_path)
    (tmp_path / "POSE" / "junk_name.tif").unlink()
    with pytest.raises(DataError, match="no frontal") as err:
        load_caspeal(tmp_path)
    assert "000003" in str(err.value)
    records = load_caspeal(tmp_path, strict=False)
    assert [s.kind for s in records.skipped] == ["missing_pair"] and len(records) == 8


def test_empty_root(tmp_path):
    with pytest.raises(DataError, match="no CAS-PEAL-R1 images"):
        load_caspeal(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_caspeal(tmp_path / "missing")
