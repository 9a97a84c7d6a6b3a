import pytest

from conftest import write_image
from data_tools.folder import load_folder
from data_tools.protocol import DataError


def make_tree(root):
    for n, (ident, yaw, fname) in enumerate([
        ("alice", "0", "a.png"), ("alice", "0", "b.png"), ("alice", "+45", "b.png"), ("alice", "-30", "c.png"),
        ("bob", "0", "x.png"), ("bob", "90", "y.png"),
    ]):
        write_image(root / ident / yaw / fname, (8, 8), n)


def test_tree_layout_pairs_by_name_then_first_frontal(tmp_path):
    make_tree(tmp_path)
    records = load_folder(tmp_path)
    pairs = {(r.identity, r.yaw, r.profile.name): r.frontal.name for r in records}
    assert pairs == {("alice", 0, "a.png"): "a.png", ("alice", 0, "b.png"): "b.png",
                     ("alice", 45, "b.png"): "b.png", ("alice", -30, "c.png"): "a.png",
                     ("bob", 0, "x.png"): "x.png", ("bob", 90, "y.png"): "x.png"}
    assert all(r.frontal.parent.name == "0" for r in records)


def test_csv_layout_relative_paths(tmp_path):
    make_tree(tmp_path / "imgs")
    (tmp_path / "pairs.csv").write_text("profile,frontal,identity,yaw,illumination\n"
                                        "imgs/alice/+45/b.png,imgs/alice/0/a.png,alice,45,lamp\n"
                                        "imgs/bob/90/y.png,imgs/bob/0/x.png,bob,-90,\n")
    for root in (tmp_path, tmp_path / "pairs.csv"):
        records = load_folder(root)
        assert [(r.identity, r.yaw, r.illumination) for r in records] == [("alice", 45, "lamp"), ("bob", -90, "")]
        assert records[0].profile == tmp_path / "imgs/alice/+45/b.png"


def test_csv_problems(tmp_path):
    make_tree(tmp_path / "imgs")
    (tmp_path / "bad.csv").write_text("profile,frontal,yaw\n")
    with pytest.raises(DataError, match="missing columns"):
        load_folder(tmp_path / "bad.csv")
    (tmp_path / "pairs.csv").write_text("profile,frontal,identity,yaw\n"
                                        "imgs/alice/+45/b.png,imgs/alice/0/zzz.png,alice,45\n"
                                        "imgs/bob/90/y.png,imgs/bob/0/x.png,bob,ninety\n"
                                        "imgs/bob/90/y.png,imgs/bob/0/x.png,bob,90\n")
    with pytest.raises(DataError, match="zzz.png does not exist"):
        load_folder(tmp_path)
    records = load_folder(tmp_path, strict=False)
    assert len(records) == 1
    assert sorted(s.kind for s in records.skipped) == ["bad_file", "missing_pair"]
    assert any("not a signed integer" in s.rule for s in records.skipped)


def test_tree_problems(tmp_path):
    make_tree(tmp_path)
    write_image(tmp_path / "carol" / "30" / "c.png", (8, 8), 7)
    write_image(tmp_path / "bob" / "left" / "c.png", (8, 8), 8)
    with pytest.raises(DataError, match="not a signed integer"):
        load_folder(tmp_path)
    records = load_folder(tmp_path, strict=False)
    assert {s.path.parent.parent.name: s.kind for s in records.skipped} == {"bob": "bad_file", "carol": "missing_pair"}
    with pytest.raises(DataError, match="no images"):
        load_folder(tmp_path / "carol" / "30")
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nothing")
