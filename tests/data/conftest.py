"""Fixtures of the data tests: tiny on-disk CamVid / Cityscapes trees, the real CamVid."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# ../shared/datasets/camvid relative to the repository root (tests/data/ is two below).
_REAL_CAMVID = Path(__file__).resolve().parents[2].parent / "shared/datasets/camvid"


def write_png(path: Path, array: np.ndarray) -> Path:
    """Writes a uint8 array (H, W) or (H, W, 3) as PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def make_camvid(tmp_path):
    """Returns a function that writes a small SegNet-layout CamVid tree.

    The tree has train frames of sequences 0001TP, 0006R0 and 0016E5 (counts set
    by `train_counts`) and val frames of 0016E5; labels hold raw ids 0-11.
    """

    def make(train_counts=(2, 3, 4), val_count=2, height=12, width=16, seed=0):
        rng = np.random.default_rng(seed)
        root = tmp_path / "camvid"
        splits = {"train": [], "val": []}
        sequences = ("0001TP", "0006R0", "0016E5")
        for sequence, count in zip(sequences, train_counts):
            splits["train"] += [f"{sequence}_{i:06d}" for i in range(count)]
        splits["val"] = [f"0016E5_{900 + i:06d}" for i in range(val_count)]
        for split, stems in splits.items():
            lines = []
            for stem in stems:
                write_png(root / split / f"{stem}.png", random_image(rng, height, width))
                write_png(root / f"{split}annot" / f"{stem}.png",
                          rng.integers(0, 12, (height, width)))
                lines.append(f"{split}/{stem}.png {split}annot/{stem}.png")
            (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
        return root

    return make


@pytest.fixture
def make_cityscapes(tmp_path):
    """Returns a function that writes a small raw-layout Cityscapes tree.

    Each label map holds a fixed set of labelIds (0, 7, 8, 11, 26, 33 and 255 for
    license plates), so tests know the expected trainIds.
    """

    def make(cities=None, split="train", height=8, width=16, seed=0):
        cities = cities or {"aachen": 2, "bochum": 1, "zurich": 3}
        rng = np.random.default_rng(seed)
        root = tmp_path / "cityscapes"
        raw_ids = np.array([0, 7, 8, 11, 26, 33, 255], np.uint8)
        for city, count in cities.items():
            for i in range(count):
                stem = f"{city}_{i:06d}_000019"
                write_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                          random_image(rng, height, width))
                label = raw_ids[np.arange(height * width).reshape(height, width) % len(raw_ids)]
                write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label)
        return root

    return make


@pytest.fixture
def real_camvid_root():
    """The real CamVid (SegNet 360x480 version), or skip when it is not on this machine."""
    root = Path(os.environ.get("TF_NAS_SEG_CAMVID", _REAL_CAMVID))
    if not (root / "train.txt").is_file():
        pytest.skip(f"real CamVid not found at {root} (set TF_NAS_SEG_CAMVID)")
    return root


@pytest.fixture
def png():
    """The `write_png(path, array)` helper, for tests that build their own files."""
    return write_png
