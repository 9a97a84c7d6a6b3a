"""Running the notebooks on Google Colab: the first cell of every notebook, and `setup()` which it calls.

Every notebook starts with the same cell (`first_cell_source()`, checked by a test):

- on Colab (``"google.colab" in sys.modules``) it ``%pip install``s this repository from GitHub
  (`REPO_URL`). A plain ``pip install`` leaves requirements that are already satisfied alone, so
  Colab's own torch (a CUDA build) and ipywidgets 7 stay as they are: ``torch>=2.1`` and
  ``ipywidgets>=7.7,<9`` in pyproject.toml accept them. Nothing names torch or ipywidgets;
- elsewhere it installs nothing (use ``bash tasks.sh test`` or ``pip install -e ".[notebooks]"``);
- then `setup()` reports the device the notebooks use (`gancomp_lite.presets.notebook_device`: the
  GPU when there is one) and the preset. A fresh Colab runtime has no ``GANCOMP_QUICK``, so it
  selects the **full** preset; `setup()` says what that costs (`full_preset_cost`) and how to
  choose the quick one instead (``setup(quick=True)``, or ``os.environ["GANCOMP_QUICK"] = "1"``
  before the next cell).

The widget factories of `gancomp_lite.viz` use only APIs common to ipywidgets 7.7 (Colab) and 8.
Colab shows ipywidgets 7 natively; with ipywidgets 8 it needs its custom widget manager, which
`setup()` turns on.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

from gancomp_lite.presets import PRESETS, get_preset, notebook_device

REPO_URL = "https://github.com/gancomp-lite/gancomp-lite"      # placeholder until the repository is public
PIP_SPEC = f"gancomp-lite @ git+{REPO_URL}"
QUICK_ENV = "GANCOMP_QUICK"

# Measured for `full_preset_cost` (2-core CPU development machine, busy, one torch thread):
# render_synthpie(preset="full", ids=4) wrote 1,040 images of 128x128 in 24.4 s (43 images/s), 11.3 MB.
FULL_RENDER_IMAGES_PER_SECOND_CPU = 43.0
FULL_PNG_BYTES_PER_IMAGE = 10_800
CAMERAS = 13


def in_colab() -> bool:
    """True inside a Google Colab runtime (its kernel imports ``google.colab`` at start-up)."""
    return "google.colab" in sys.modules


def first_cell_source() -> str:
    """The exact source of every notebook's first cell (tests compare each notebook's first cell to it)."""
    return (
        "# Colab: install gancomp-lite from GitHub (Colab's own torch and ipywidgets are kept). Elsewhere: nothing.\n"
        "import sys\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "{PIP_SPEC}"\n'
        "import gancomp_lite.colab; gancomp_lite.colab.setup();   # device, preset, and what the full preset costs"
    )


def full_preset_cost() -> str:
    """What the full preset costs, from `PRESETS["full"]` and the measurements above (one paragraph)."""
    from gancomp_lite.viz.objective_demo import DemoConfig

    full = PRESETS["full"]
    demo = DemoConfig.from_preset(full)
    ids = full.train_ids + full.test_ids
    images = ids * CAMERAS * full.illuminations
    gigabytes = images * FULL_PNG_BYTES_PER_IMAGE / 1e9
    minutes = images / FULL_RENDER_IMAGES_PER_SECOND_CPU / 60
    return (f"The full preset renders a Multi-PIE-sized SynthPIE set on first use: {ids} identities x {CAMERAS} cameras "
            f"x {full.illuminations} illuminations = {images:,} images of {full.image_size}x{full.image_size} "
            f"(about {gigabytes:.1f} GB in the cache, about {minutes:.0f} minutes at the "
            f"{FULL_RENDER_IMAGES_PER_SECOND_CPU:.0f} images/s measured on one CPU thread; a GPU renders faster, "
            f"PNG writing stays on the CPU), and each of notebook 01's demo runs trains {demo.steps:,} steps at "
            f"{demo.size}x{demo.size} (a GPU job). The quick preset (64x64, "
            f"{PRESETS['quick'].train_ids + PRESETS['quick'].test_ids} identities, {PRESETS['quick'].illuminations} "
            f"illuminations) runs each notebook in a few minutes, on a CPU too.")


@dataclass(frozen=True)
class Setup:
    colab: bool
    device: torch.device
    preset: str
    preset_chosen: bool          # GANCOMP_QUICK (or CI) was set, rather than the default
    ipywidgets: str | None       # the installed version, or None


def _ipywidgets_version() -> str | None:
    try:
        import ipywidgets
    except ImportError:
        return None
    return str(ipywidgets.__version__)


def setup(quick: bool | None = None, verbose: bool = True) -> Setup:
    """Report (and with `quick`, choose) the preset and the device the notebooks will use.

    ``quick=True`` / ``False`` sets ``GANCOMP_QUICK`` for this kernel (``None`` leaves it as it is).
    When the preset was not chosen and resolves to full, the message says what full costs and how
    to take the quick one. Installs nothing and downloads nothing.
    """
    if quick is not None:
        os.environ[QUICK_ENV] = "1" if quick else "0"
    chosen = QUICK_ENV in os.environ or bool(os.environ.get("CI"))
    preset = get_preset().name
    device = notebook_device()
    colab = in_colab()
    widgets = _ipywidgets_version()
    if colab and widgets and int(widgets.split(".")[0]) >= 8:
        try:                                   # Colab renders ipywidgets 8 only through its custom manager
            from google.colab import output
            output.enable_custom_widget_manager()
        except Exception:                      # noqa: BLE001 - an older Colab: widgets may not render
            pass
    info = Setup(colab, device, preset, chosen, widgets)
    if verbose:
        print(setup_message(info))
    return info


def setup_message(info: Setup) -> str:
    """The text `setup()` prints for `info`."""
    where = "Colab" if info.colab else "this machine"
    name = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else "CPU"
    lines = [f"gancomp-lite on {where}: device {info.device} ({name}); preset {info.preset!r} "
             f"({'GANCOMP_QUICK/CI' if info.preset_chosen else 'default: GANCOMP_QUICK is not set'}); "
             f"ipywidgets {info.ipywidgets or 'not installed'}"]
    if info.colab and info.device.type != "cuda":
        lines.append("No GPU in this runtime: Runtime > Change runtime type > GPU, then run this cell again.")
    if info.preset == "full" and not info.preset_chosen:
        lines.append(full_preset_cost())
        lines.append("For the quick preset, change the last line of this cell to gancomp_lite.colab.setup(quick=True) "
                     'and run it again (or set os.environ["GANCOMP_QUICK"] = "1" before the next cell).')
    return "\n".join(lines)
