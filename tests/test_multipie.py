import json

import pytest

from conftest import make_multipie, multipie_path, write_image
from data_tools.multipie import load_multipie, parse_name, split_multipie
from data_tools.protocol import DataError


def test_parse_name_reads_every_field_and_cropped_suffixes(tmp_path):
    for suffix in ("", "_cropped", "_crop_128"):
        path = multipie_path(tmp_path, "192", "01", "02", "14_0", "07", suffix)
        name = parse_name(path)
        assert (name.subject, name.session, name.recording, name.illumination) == ("192", "01", "02", "07")
        assert name.camera.cam_id == "14_0" and name.camera.yaw == -15


@pytest.mark.parametrize("filename, rule", [
    ("001_01_01_051.png", "does not follow"),
    ("001_01_01_999_07.png", "unknown camera code"),
    ("001_01_01_051_25.png", "outside Multi-PIE's 00-19"),
    ("001_01_02_051_07.png", "recording folder"),
    ("002_01_01_051_07.png", "subject folder"),
])
def test_parse_name_rejects_bad_names(tmp_path, filename, rule):
    path = tmp_path / "session01" / "multiview" / "001" / "01" / "05_1" / filename
    with pytest.raises(DataError, match=rule) as err:
        parse_name(path)
    assert filename in str(err.value)


def test_load_pairs_every_view_with_the_same_illumination_frontal(multipie_tree):
    records = load_multipie(multipie_tree)
    assert len(records) == 2 * 13 * 2 and not records.skipped
    for r in records:
        assert r.frontal.parent.name == "05_1"
        assert parse_name(r.frontal).illumination == r.illumination == r.frontal_illumination
        assert parse_name(r.frontal).subject == r.identity == parse_name(r.profile).subject
        assert r.yaw == parse_name(r.profile).camera.yaw
    assert sorted({r.yaw for r in records}) == list(range(-90, 91, 15))


def test_fixed_illumination_pairing_and_filters(multipie_tree):
    records = load_multipie(multipie_tree, pair_illumination="07", yaws=[45, -45], illuminations=["00"])
    assert len(records) == 2 * 2
    assert all(r.frontal.name.endswith("_051_07.png") and r.illumination == "00" for r in records)
    assert len(load_multipie(multipie_tree, include_frontal=False)) == 2 * 12 * 2


def test_root_may_hold_data_folder_and_elevated_cameras_are_skipped(tmp_path):
    make_multipie(tmp_path / "data", subjects=("001",), illums=("07",))
    write_image(multipie_path(tmp_path / "data", "001", "01", "01", "08_1", "07"))
    records = load_multipie(tmp_path)
    assert len(records) == 13 and not records.skipped


def test_landmarks_csv_is_attached_to_profile_and_frontal(tmp_path):
    make_multipie(tmp_path, subjects=("001",), cameras=["05_1", "19_0"], illums=("07",))
    rows = ["file," + ",".join(f"x{i},y{i}" for i in range(5)) + ",v0,v1,v2,v3,v4"]
    for cam, x in (("05_1", 5.0), ("19_0", 6.0)):
        rel = multipie_path(tmp_path, "001", "01", "01", cam, "07").relative_to(tmp_path)
        rows.append(f"{rel}," + ",".join(f"{x + i},{i}" for i in range(5)) + ",1,0,1,1,1")
    (tmp_path / "landmarks.csv").write_text("\n".join(rows) + "\n")
    profile = next(r for r in load_multipie(tmp_path) if r.yaw == 45)
    assert profile.landmarks[0] == (6.0, 0.0) and profile.frontal_landmarks[4] == (9.0, 4.0)
    assert profile.visible == (True, False, True, True, True)


def test_setting1_and_setting2_splits(tmp_path):
    subjects = [f"{i:03d}" for i in range(1, 203)]
    make_multipie(tmp_path, subjects=subjects, sessions=("01", "02"), recordings=("01", "02"),
                  cameras=["05_1", "05_0"], illums=("07",), size=(4, 4))
    records = load_multipie(tmp_path)
    train, test = split_multipie(records, "setting1")
    assert {r.session for r in train + test} == {"01"}
    assert train.identities() == subjects[:150] and test.identities() == subjects[150:]
    train, test = split_multipie(records, "setting2")
    assert {r.expression for r in train + test} == {"neutral"}
    assert {(r.session, r.recording) for r in train} == {("01", "01"), ("02", "01")}
    assert train.identities() == subjects[:200] and test.identities() == subjects[200:]
    with pytest.raises(DataError, match="only 2"):
        split_multipie(records.subset(r for r in records if r.identity in ("001", "002")), "setting2")


def test_first_n_and_synthpie_json_splits(tmp_path):
    make_multipie(tmp_path, subjects=("001", "002", "003", "004"), illums=("07",), size=(4, 4))
    records = load_multipie(tmp_path)
    train, test = split_multipie(records, "first:3")
    assert train.identities() == ["001", "002", "003"] and test.identities() == ["004"]
    (tmp_path / "synthpie.json").write_text(json.dumps({"train_ids": [2, 4], "test_ids": ["001", "003"]}))
    train, test = split_multipie(load_multipie(tmp_path))   # auto -> synthpie.json
    assert train.identities() == ["002", "004"] and test.identities() == ["001", "003"]
    with pytest.raises(DataError, match="empty side"):
        split_multipie(records, "first:4")


def test_missing_frontal_raises_or_is_skipped(multipie_tree):
    gone = multipie_path(multipie_tree, "002", "01", "01", "05_1", "00")
    gone.unlink()
    with pytest.raises(DataError, match="no frontal") as err:
        load_multipie(multipie_tree)
    assert "002_01_01" in str(err.value)
    records = load_multipie(multipie_tree, strict=False)
    assert len(records) == 2 * 13 * 2 - 13
    assert len(records.skipped) == 12 and all(s.kind == "missing_pair" for s in records.skipped)


def test_bad_files_raise_naming_the_file_or_are_skipped(multipie_tree):
    corrupt = multipie_path(multipie_tree, "001", "01", "01", "19_0", "07")
    corrupt.write_bytes(b"not a png")
    wrong_name = multipie_tree / "session01/multiview/001/01/19_0/hello.png"
    write_image(wrong_name)
    unknown_cam = multipie_path(multipie_tree, "001", "01", "01", "99_9", "07")
    write_image(unknown_cam)
    big = multipie_path(multipie_tree, "002", "01", "01", "20_0", "00")
    write_image(big, size=(20, 20))
    for bad, rule in ((wrong_name, "does not follow"), (unknown_cam, "unknown camera folder")):
        with pytest.raises(DataError, match=rule) as err:
            load_multipie(multipie_tree)
        assert str(bad) in str(err.value)
        bad.unlink()
    with pytest.raises(DataError, match="unreadable") as err:
        load_multipie(multipie_tree)
    assert str(corrupt) in str(err.value)
    records = load_multipie(multipie_tree, strict=False)
    assert {s.path for s in records.skipped} == {corrupt, big}
    assert any("share one size" in s.rule for s in records.skipped)
    assert corrupt not in {r.profile for r in records} and big not in {r.profile for r in records}
    write_image(wrong_name)
    assert wrong_name in {s.path for s in load_multipie(multipie_tree, strict=False).skipped}


def test_truncated_file_is_found_by_decoding(multipie_tree):
    path = multipie_path(multipie_tree, "001", "01", "01", "04_1", "00")
    write_image(path, size=(16, 16), value=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="unreadable") as err:
        load_multipie(multipie_tree, verify="decode")
    assert str(path) in str(err.value)


def test_empty_or_wrong_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_multipie(tmp_path / "nope")
    with pytest.raises(DataError, match="session"):
        load_multipie(tmp_path)
    (tmp_path / "session01" / "multiview").mkdir(parents=True)
    with pytest.raises(DataError, match="no Multi-PIE images"):
        load_multipie(tmp_path)


def test_reads_synthpie_output(tmp_path):
    from data_tools.synthpie import render_synthpie

    render_synthpie(tmp_path, ids=2, size=16, illums=2, seed=0, progress=False, expressions=("neutral", "smile"))
    records = load_multipie(tmp_path, verify="decode")
    assert len(records) == 2 * 13 * 2 * 2 and not records.skipped
    assert {r.expression for r in records} == {"neutral", "smile"}
    assert all(r.landmarks is not None and r.visible is not None for r in records)
    meta = json.loads((tmp_path / "synthpie.json").read_text())
    train, test = split_multipie(records)
    assert train.identities() == meta["train_ids"] and test.identities() == meta["test_ids"]
