"""Static description of a segmentation data set: classes, ignore label, colours.

The instances here are the single source of truth for class order. CamVid uses the
standard CamVid-11 order of the SegNet release; Cityscapes uses the 19 official
trainIds (cityscapesScripts `labels.py`); the synthetic street scenes reuse the
CamVid-11 classes (or a subset of them) so that models, metrics and drawings behave
the same on synthetic and real data.
"""

import dataclasses
from tf_nas_seg.errors import ConfigError

# Every label tensor the pipeline produces marks "do not score this pixel" with
# this value, whatever the raw encoding on disk was.
IGNORE_LABEL = 255


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Names, count and colours of the classes of one data set.

    Attributes:
        name: Short identifier, e.g. `"camvid"`.
        num_classes: Number of evaluated classes; train ids are `0..num_classes-1`.
        class_names: One name per train id.
        ignore_label: Label value of pixels that losses and metrics skip (255).
        palette: One `(r, g, b)` colour per train id, used to draw label maps.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    ignore_label: int = IGNORE_LABEL
    palette: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self):
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise ConfigError(
                f"{self.name}: {len(self.class_names)} class names for "
                f"{self.num_classes} classes")
        if len(self.palette) != self.num_classes:
            raise ConfigError(
                f"{self.name}: {len(self.palette)} palette colours for "
                f"{self.num_classes} classes")
        if 0 <= self.ignore_label < self.num_classes or not 0 <= self.ignore_label <= 255:
            # Labels are stored as uint8, so the ignore value must fit in a byte
            # and must not collide with a real class.
            raise ConfigError(
                f"{self.name}: ignore_label {self.ignore_label} must be in "
                f"{self.num_classes}..255")


CAMVID_CLASS_NAMES = ("Sky", "Building", "Pole", "Road", "Sidewalk", "Tree",
                      "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist")

# The colours of the SegNet CamVid tutorial, so drawings match published figures.
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128),
                  (60, 40, 222), (128, 128, 0), (192, 128, 128), (64, 64, 128),
                  (64, 0, 128), (64, 64, 0), (0, 128, 192))

CAMVID = DatasetInfo(name="camvid", num_classes=11, class_names=CAMVID_CLASS_NAMES,
                     palette=CAMVID_PALETTE)

CITYSCAPES_CLASS_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole",
                          "traffic light", "traffic sign", "vegetation", "terrain",
                          "sky", "person", "rider", "car", "truck", "bus", "train",
                          "motorcycle", "bicycle")

CITYSCAPES_PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
                      (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
                      (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
                      (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                      (0, 80, 100), (0, 0, 230), (119, 11, 32))

CITYSCAPES = DatasetInfo(name="cityscapes", num_classes=19,
                         class_names=CITYSCAPES_CLASS_NAMES, palette=CITYSCAPES_PALETTE)

# Order in which CamVid classes are added to the synthetic scenes as num_classes
# grows: the first three make a complete scene (every pixel has a class), the rest
# are objects in order of how much area they usually cover. SignSymbol comes after
# Pole because signs are drawn on poles.
SYNTHETIC_CLASS_PRIORITY = ("Sky", "Building", "Road", "Car", "Sidewalk", "Tree",
                            "Pedestrian", "Pole", "SignSymbol", "Fence", "Bicyclist")

SYNTHETIC_MIN_CLASSES = 3


def synthetic_info(num_classes: int = 11) -> DatasetInfo:
    """Describes the synthetic street scenes drawn with `num_classes` classes.

    The classes are the first `num_classes` entries of `SYNTHETIC_CLASS_PRIORITY`
    (Sky, Building, Road, Car, Sidewalk, Tree, Pedestrian, Pole, SignSymbol, Fence,
    Bicyclist), listed in CamVid-11 order and numbered contiguously; e.g. 4 classes
    are Sky=0, Building=1, Road=2, Car=3.

    Args:
        num_classes: Between 3 and 11.

    Returns:
        The `DatasetInfo`, named `"synthetic"` for all 11 classes and
        `"synthetic{num_classes}"` otherwise.

    Raises:
        ValueError: If `num_classes` is outside 3..11.
    """
    if not SYNTHETIC_MIN_CLASSES <= num_classes <= len(CAMVID_CLASS_NAMES):
        raise ConfigError(
            f"the synthetic street scenes support {SYNTHETIC_MIN_CLASSES} to "
            f"{len(CAMVID_CLASS_NAMES)} classes, got num_classes={num_classes}")
    chosen = set(SYNTHETIC_CLASS_PRIORITY[:num_classes])
    ids = [i for i, name in enumerate(CAMVID_CLASS_NAMES) if name in chosen]
    name = "synthetic" if num_classes == len(CAMVID_CLASS_NAMES) else f"synthetic{num_classes}"
    return DatasetInfo(name=name, num_classes=num_classes,
                       class_names=tuple(CAMVID_CLASS_NAMES[i] for i in ids),
                       palette=tuple(CAMVID_PALETTE[i] for i in ids))


SYNTHETIC = synthetic_info(11)
