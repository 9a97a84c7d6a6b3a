"""Tampered and malformed checkpoints: every kind is a CheckpointError naming the file, none runs code."""
from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, manifest_path, save_checkpoint, sha256_file


def _saved(tmp_path: Path, state=None, manifest=None) -> Path:
    path = tmp_path / "model.pt"
    save_checkpoint(path, state if state is not None else {"w": torch.arange(4.0)}, manifest or {"arch": "resnet9"})
    return path


def _set_manifest(path: Path, raw: bytes) -> None:
    manifest_path(path).write_bytes(raw)


def _rehash(path: Path, **changes) -> None:
    """Write a manifest with a matching hash: only the loader's own checks stand in the way."""
    manifest = json.loads(manifest_path(path).read_text())
    manifest.update(changes, sha256=sha256_file(path))
    _set_manifest(path, json.dumps(manifest).encode())


@pytest.mark.parametrize("raw, rule", [
    (b"[1, 2, 3]", "must be a JSON object, not a list"),
    (b"\xff\xfe{\"arch\": 1}", "not UTF-8"),
    (b"{\"arch\": ", "not valid JSON"),
    (b"null", "must be a JSON object"),
])
def test_a_manifest_that_is_no_json_object_is_refused_by_name(tmp_path, raw, rule):
    path = _saved(tmp_path)
    _set_manifest(path, raw)
    with pytest.raises(CheckpointError, match=rule) as err:
        load_checkpoint(path)
    assert "model.json" in str(err.value)


@pytest.mark.parametrize("changes, rule", [
    ({"size": "64"}, "'size' must be int"),
    ({"size": 0}, "positive image size"),
    ({"size": True}, "'size' must be int"),
    ({"knobs": ["ngf", 8]}, "'knobs' must be dict"),
    ({"knobs": {"ngf": {"nested": 1}}}, "knobs must be numbers"),
    ({"knobs": {"no_such_knob": 3}}, "not knobs of resnet9"),
    ({"arch": 7}, "'arch' must be str"),
    ({"metrics": [0.5]}, "'metrics' must be dict or null"),
])
def test_manifest_fields_of_the_wrong_type_are_refused_by_name(tmp_path, changes, rule):
    path = _saved(tmp_path)
    _rehash(path, **changes)
    with pytest.raises(CheckpointError, match=rule):
        load_checkpoint(path)


def test_a_state_that_is_not_a_dict_is_refused(tmp_path):
    path = _saved(tmp_path, state=[torch.zeros(2)])
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(path)


def test_a_corrupt_archive_with_a_matching_hash_is_called_corrupt(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
    name_len, extra_len = struct.unpack_from("<HH", data, member.header_offset + 26)   # zip local header
    data[member.header_offset + 30 + name_len + extra_len + 2] ^= 0xFF   # a byte inside the pickle
    path.write_bytes(bytes(data))
    _rehash(path)
    with pytest.raises(CheckpointError, match="corrupt checkpoint archive") as err:
        load_checkpoint(path)
    assert "other than tensors" not in str(err.value)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    _rehash(path)
    with pytest.raises(CheckpointError, match="model.pt"):
        load_checkpoint(path)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/gancomp-pwned"),))


def test_a_crafted_pickle_with_a_matching_hash_never_runs(tmp_path):
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1), "x": _Boom()}, buffer)
    path.write_bytes(buffer.getvalue())
    _set_manifest(path, json.dumps({"sha256": sha256_file(path)}).encode())
    Path("/tmp/gancomp-pwned").unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="other than tensors"):
        load_checkpoint(path)
    assert not Path("/tmp/gancomp-pwned").exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Boom()))
    _set_manifest(raw, json.dumps({"sha256": sha256_file(raw)}).encode())
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not Path("/tmp/gancomp-pwned").exists()


def test_a_wrong_hash_is_refused(tmp_path):
    path = _saved(tmp_path)
    torch.save({"w": torch.ones(4)}, path)
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_checkpoint(path)


def test_the_cli_reports_a_malformed_checkpoint_in_one_line(tmp_path, capsys):
    from gancomp_lite.cli import main
    from gancomp_lite.models.registry import build

    path = tmp_path / "gen.pt"
    save_checkpoint(path, build("resnet9", None, 16, ngf=8).state_dict(), {"arch": "resnet9", "size": 16, "knobs": {"ngf": 8}})
    _rehash(path, knobs="ngf=8")
    assert main(["eval", "--data", str(tmp_path), "--identity", str(path), "--generator", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
