"""How the label ids stored in a data set's files map to train ids."""

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

from tf_nas_seg.data.dataset_info import DatasetInfo
from tf_nas_seg.errors import ConfigError

# Marks a raw value that must not occur in a label file of this encoding.
INVALID = -1


@dataclasses.dataclass(frozen=True)
class LabelEncoding:
    """A 256-entry lookup table from raw label byte to train id.

    Each entry is a train id, the ignore label (255), or `INVALID` (-1) for a raw
    value that means the files are not what the loader expects (wrong data set,
    colour-coded label images, instance-id maps...). Error messages are assembled
    from `description` and `fix`, e.g. "label file x.png has value 17 but
    {description}; {fix}".

    Attributes:
        table: 256 entries, indexed by the raw uint8 value.
        description: What the raw values should be, e.g. "CamVid has 11 classes
            (0-10) plus void 11".
        fix: What the user should check when an invalid value turns up.
    """

    table: tuple[int, ...]
    description: str
    fix: str

    def __post_init__(self):
        if len(self.table) != 256:
            raise ConfigError(f"a label table needs 256 entries, got {len(self.table)}")
        if any(not (v == INVALID or 0 <= v <= 255) for v in self.table):
            raise ConfigError("label table entries must be in 0..255 or INVALID (-1)")

    @classmethod
    def from_mapping(cls, mapping: Mapping[int, int], ignored: Iterable[int], *,
                     description: str, fix: str, ignore_label: int = 255) -> "LabelEncoding":
        """Builds the table from raw->train pairs and the raw values to ignore.

        Args:
            mapping: Raw value -> train id for every evaluated class.
            ignored: Raw values that are legitimate but not scored (void, unlabeled).
            description: See the class attributes.
            fix: See the class attributes.
            ignore_label: Train-side value of ignored pixels.

        Returns:
            The encoding; raw values in neither argument are invalid.
        """
        table = [INVALID] * 256
        for raw in ignored:
            table[raw] = ignore_label
        for raw, train_id in mapping.items():
            table[raw] = train_id
        return cls(table=tuple(table), description=description, fix=fix)

    @classmethod
    def train_ids(cls, info: DatasetInfo, *, fix: str) -> "LabelEncoding":
        """The encoding of labels already stored as train ids (plus the ignore label).

        Args:
            info: The data set; values `0..num_classes-1` and `info.ignore_label`
                are valid.
            fix: See the class attributes.

        Returns:
            The identity encoding.
        """
        return cls.from_mapping(
            {i: i for i in range(info.num_classes)}, [info.ignore_label],
            description=(f"{info.name} labels are train ids 0-{info.num_classes - 1} "
                         f"plus ignore {info.ignore_label}"),
            fix=fix, ignore_label=info.ignore_label)

    def lookup_table(self) -> np.ndarray:
        """The table as an int32 array of shape [256] (for np/tf gather)."""
        return np.asarray(self.table, dtype=np.int32)

    def first_invalid_value(self, raw: np.ndarray) -> int | None:
        """Returns an invalid raw value found in `raw`, or None if all are valid."""
        present = np.flatnonzero(np.bincount(np.asarray(raw, np.uint8).ravel(), minlength=256))
        bad = present[self.lookup_table()[present] == INVALID]
        return int(bad[0]) if bad.size else None
