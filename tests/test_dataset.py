import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_multipie
from data_tools.dataset import FaceDataset, gallery_records, load_splits, mirror_points
from data_tools.multipie import load_multipie
from data_tools.protocol import DataError, patch_boxes

FACE = [(20.0, 24.0), (44.0, 24.0), (32.0, 38.0), (24.0, 50.0), (40.0, 50.0)]   # at 64x64


def landmark_csv(root, rows):
    header = "file," + ",".join(f"x{i},y{i}" for i in range(5)) + ",v0,v1,v2,v3,v4"
    lines = [f"{path.relative_to(root)}," + ",".join(f"{x},{y}" for x, y in pts) + ",1,1,1,1,1" for path, pts in rows]
    (root / "landmarks.csv").write_text("\n".join([header] + lines) + "\n")


@pytest.fixture
def small_set(tmp_path):
    make_multipie(tmp_path, subjects=("001", "002", "003"), cameras=["05_1", "19_0", "08_0"], illums=("07",),
                  size=(64, 64))
    paths = sorted(tmp_path.rglob("*.png"))
    landmark_csv(tmp_path, [(p, FACE) for p in paths])
    return tmp_path


@pytest.mark.parametrize("preload", [True, False])
def test_sample_layout_and_value_range(small_set, preload):
    ds = FaceDataset(load_multipie(small_set), size=32, preload=preload)
    assert ds.preloaded is preload and len(ds) == 9 and ds.identities == ["001", "002", "003"]
    sample = ds[4]
    assert sample["profile"].shape == sample["frontal"].shape == (3, 32, 32)
    assert sample["profile"].dtype == torch.float32
    assert -1.0 <= sample["profile"].min() and sample["profile"].max() <= 1.0
    assert sample["identity"] == ds.identities.index(sample["identity_name"])
    assert sample["landmarks"].shape == (5, 2)
    assert torch.allclose(sample["landmarks"], torch.tensor(FACE) / 2)         # 64 -> 32 grid
    expected = patch_boxes([tuple(p) for p in np.array(FACE) / 2], 32)
    assert sample["patch_boxes"].tolist() == [list(expected[k]) for k in ("left_eye", "right_eye", "nose", "mouth")]
    raw = np.array(Image.open(ds.records[4].profile).resize((32, 32), Image.Resampling.BILINEAR))
    assert torch.allclose(sample["profile"], torch.from_numpy(raw).permute(2, 0, 1).float() / 127.5 - 1)


def test_preload_and_lazy_give_the_same_tensors(small_set):
    records = load_multipie(small_set)
    a, b = FaceDataset(records, preload=True), FaceDataset(records, preload=False)
    for i in (0, 5):
        assert torch.equal(a[i]["profile"], b[i]["profile"]) and torch.equal(a[i]["frontal"], b[i]["frontal"])


def test_mirror_flips_negative_yaw_pairs_and_swaps_sides(small_set):
    records = load_multipie(small_set)
    plain, mirrored = FaceDataset(records), FaceDataset(records, mirror=True)
    i = next(k for k, r in enumerate(records) if r.yaw == -45)
    p, m = plain[i], mirrored[i]
    assert m["mirrored"] and m["yaw"] == 45 and p["yaw"] == -45
    assert torch.equal(m["profile"], p["profile"].flip(-1)) and torch.equal(m["frontal"], p["frontal"].flip(-1))
    assert m["landmarks"][0, 0] == pytest.approx(64 - FACE[1][0])            # the other eye, now image-left
    assert m["landmarks"][0, 0] < m["landmarks"][1, 0]
    j = next(k for k, r in enumerate(records) if r.yaw == 45)
    assert not mirrored[j]["mirrored"] and torch.equal(mirrored[j]["profile"], plain[j]["profile"])
    assert np.allclose(mirror_points(mirror_points(np.array(FACE), 64), 64), FACE)


def test_alignment_puts_landmarks_on_the_canonical_grid(small_set):
    ds = FaceDataset(load_multipie(small_set), size=32, align=True)
    pts = ds[0]["landmarks"].numpy()
    assert pts[:2, 1] == pytest.approx([10.0, 10.0])                         # 40 * 32/128
    assert pts[3:, 1].mean() - pts[:2, 1].mean() == pytest.approx(12.0)       # 48 * 32/128
    assert pts[:2, 0].mean() == pytest.approx(16.0)


def test_alignment_needs_landmarks_and_unknown_ones_are_nan(tmp_path):
    make_multipie(tmp_path, subjects=("001",), cameras=["05_1", "19_0"], illums=("07",), size=(16, 16))
    records = load_multipie(tmp_path)
    with pytest.raises(DataError, match="needs landmarks") as err:
        FaceDataset(records, align=True)
    assert "001_01_01" in str(err.value)
    sample = FaceDataset(records)[0]
    assert torch.isnan(sample["landmarks"]).all() and not sample["visible"].any()
    assert sample["patch_boxes"].shape == (4, 4) and (sample["patch_boxes"] >= 0).all()


def test_file_broken_after_loading_raises_data_error_naming_it(small_set):
    ds = FaceDataset(load_multipie(small_set), preload=False)
    ds.records[2].profile.write_bytes(b"garbage")
    with pytest.raises(DataError, match="unreadable") as err:
        ds[2]
    assert str(ds.records[2].profile) in str(err.value)
    with pytest.raises(DataError, match="unreadable"):
        FaceDataset(ds.records, preload=True)


def test_non_square_images_need_a_size_and_are_centre_cropped(tmp_path):
    make_multipie(tmp_path, subjects=("001",), cameras=["05_1"], illums=("07",), size=(24, 16))
    records = load_multipie(tmp_path)
    with pytest.raises(DataError, match="not square"):
        FaceDataset(records)
    assert FaceDataset(records, size=8)[0]["profile"].shape == (3, 8, 8)


def test_load_splits_and_dataloader(tmp_path):
    make_multipie(tmp_path, subjects=("001", "002", "003", "004"), cameras=["05_1", "04_1"], illums=("07", "00"))
    (tmp_path / "synthpie.json").write_text(json.dumps({"train_ids": ["001", "002", "003"], "test_ids": ["004"]}))
    train, test = load_splits(tmp_path, size=8, mirror=True)
    assert train.identities == ["001", "002", "003"] and test.identities == ["004"]
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4, shuffle=False)))
    assert batch["profile"].shape == (4, 3, 8, 8) and batch["patch_boxes"].shape == (4, 4, 4)
    assert batch["yaw"].dtype == torch.int64 and len(batch["identity_name"]) == 4
    train, test = load_splits(tmp_path, split="first:2", illuminations=["07"])
    assert len(train) == 4 and len(test) == 4


def test_gallery_is_one_neutral_frontal_per_identity(tmp_path):
    make_multipie(tmp_path, subjects=("001", "002"), sessions=("01", "02"), cameras=["05_1", "13_0"],
                  illums=("00", "07"))
    records = load_multipie(tmp_path)
    gallery = gallery_records(records)
    assert [g.identity for g in gallery] == ["001", "002"]
    assert all(g.profile == g.frontal and g.frontal.name.endswith("_01_01_051_07.png") for g in gallery)
    assert gallery_records(records, illumination="00")[0].frontal.name == "001_01_01_051_00.png"
    with pytest.raises(DataError, match="illumination '05'"):
        gallery_records(records, illumination="05")
