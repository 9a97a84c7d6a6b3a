import json

from conftest import make_multipie, multipie_path, write_image
from data_tools.check import check_tree
from gancomp_lite.cli import main


def test_clean_tree_reports_counts_and_exit_code_zero(tmp_path, capsys):
    make_multipie(tmp_path, subjects=("001", "002"), cameras=["05_1", "19_0", "11_0"], illums=("07",))
    report = check_tree("multipie", tmp_path)
    assert report.ok and report.pairs == 6 and report.images == 6
    assert report.per_yaw == {-90: 2, 0: 2, 45: 2} and report.per_identity == {"001": 3, "002": 3}
    assert main(["data", "check", "--format", "multipie", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "+45: 2" in out and "missing pairs: 0" in out


def test_problems_are_listed_and_exit_code_is_one(tmp_path, capsys):
    make_multipie(tmp_path, subjects=("001", "002"), cameras=["05_1", "19_0"], illums=("07",))
    multipie_path(tmp_path, "002", "01", "01", "05_1", "07").unlink()
    truncated = multipie_path(tmp_path, "001", "01", "01", "19_0", "07")
    write_image(truncated, (16, 16), 5)
    truncated.write_bytes(truncated.read_bytes()[:40])
    assert main(["data", "check", "--format", "multipie", "--root", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["pairs"] == 1
    assert len(report["missing_pairs"]) == 1 and "002_01_01_190_07" in report["missing_pairs"][0]
    assert len(report["bad_files"]) == 1 and str(truncated) in report["bad_files"][0]


def test_wrong_root_is_a_clean_failure(tmp_path, capsys):
    for fmt in ("multipie", "caspeal", "folder"):
        assert main(["data", "check", "--format", fmt, "--root", str(tmp_path / "missing")]) == 1
        assert "does not exist" in capsys.readouterr().out
    report = check_tree("caspeal", tmp_path)
    assert not report.ok and "no CAS-PEAL-R1 images" in report.error


def test_folder_and_caspeal_formats(tmp_path):
    write_image(tmp_path / "f" / "ann" / "0" / "a.png", (8, 8), 1)
    write_image(tmp_path / "f" / "ann" / "-45" / "a.png", (8, 8), 2)
    write_image(tmp_path / "f" / "ben" / "45" / "b.png", (8, 8), 3)
    report = check_tree("folder", tmp_path / "f")
    assert report.pairs == 2 and len(report.missing_pairs) == 1 and not report.ok
    write_image(tmp_path / "c" / "MY_000001_IEU+00_PM+00_EN_A0_D0_T0_BB_M0_R1_S0.tif", (8, 8), 4, mode="L")
    write_image(tmp_path / "c" / "MY_000001_IEU+00_PM-67_EN_A0_D0_T0_BB_M0_R1_S0.tif", (8, 8), 5, mode="L")
    report = check_tree("caspeal", tmp_path / "c")
    assert report.ok and report.per_yaw == {-67: 1, 0: 1}
