import matplotlib.pyplot as plt
import numpy as np
import pytest

from conftest import make_multipie
from data_tools.dataset import FaceDataset
from data_tools.multipie import load_multipie
from gancomp_lite.viz import data as viz_data


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def dataset(tmp_path):
    make_multipie(tmp_path, subjects=("001", "002"), cameras=["05_1", "19_0", "11_0", "14_0"],
                  illums=("00", "07"), size=(16, 16))
    return FaceDataset(load_multipie(tmp_path))


def test_plot_views_shows_present_views_and_greys_missing_ones(dataset):
    fig = viz_data.plot_views(dataset, "001", "07")
    axes = fig.axes
    assert len(axes) == 13
    shown = {ax.get_title().split("\n")[0] for ax in axes if ax.images}
    assert shown == {"05_1", "19_0", "11_0", "14_0"}
    frontal_ax = next(ax for ax in axes if ax.get_title().startswith("05_1"))
    assert len(frontal_ax.patches) == 4                    # the four TP-GAN patch boxes
    i = viz_data.view_index(dataset)[("001", "07", 45)]
    ax45 = next(ax for ax in axes if ax.get_title().startswith("19_0"))
    assert np.allclose(ax45.images[0].get_array(), viz_data.to_image(dataset[i]["profile"]))


def test_identity_grid_and_illuminations(dataset):
    fig = viz_data.plot_identity_grid(dataset, ["001", "002"], "00", yaws=(45, 0, -90))
    assert len(fig.axes) == 6 and all(ax.images for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["+45", "+0", "-90"]
    fig = viz_data.plot_illuminations(dataset, "002", yaw=-15)
    assert [ax.get_title() for ax in fig.axes] == ["illum 00", "illum 07"]
    fig = viz_data.plot_samples([dataset[0], dataset[1]], ["a", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"] and all(ax.images for ax in fig.axes)
    fig = viz_data.plot_yaw_counts(dataset.records)
    assert [p.get_height() for p in fig.axes[0].patches] == [4, 4, 4, 4]


def test_landmarks_are_drawn_filled_when_visible_and_hollow_when_hidden():
    fig, ax = plt.subplots()
    viz_data.draw_landmarks(ax, [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], [True, False, True, True, False])
    filled, hollow = ax.collections
    assert len(filled.get_offsets()) == 3 and len(hollow.get_offsets()) == 2


def test_explorer_redraws_on_a_new_pick(dataset, monkeypatch):
    calls = []
    real = viz_data.plot_views

    def recording_plot_views(ds, identity, illumination, **kw):
        calls.append((identity, illumination))
        return real(ds, identity, illumination, **kw)

    monkeypatch.setattr(viz_data, "plot_views", recording_plot_views)
    ui = viz_data.views_explorer(dataset)
    identity, illumination = ui.children[0].children
    assert list(identity.options) == ["001", "002"] and list(illumination.options) == ["00", "07"]
    illumination.value = "07"
    identity.value = "002"
    assert calls[0] == ("001", "00") and calls[-1] == ("002", "07")
