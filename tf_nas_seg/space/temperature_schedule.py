"""Annealing of the Gumbel-softmax temperature over the epochs of a search."""

import dataclasses
from tf_nas_seg.errors import ConfigError

SCHEDULES = ("exponential", "linear", "constant")


@dataclasses.dataclass(frozen=True)
class TemperatureSchedule:
    """tau(epoch) from `start` at epoch 0 to `end` at the last epoch.

    AutoRTNet anneals tau from 3.0 to 0.03 without giving the shape; exponential decay
    per epoch (tau_e = start * (end / start) ** (e / (E - 1))) is the common choice
    (SNAS, FBNet), linear is the alternative.

    Attributes:
        start: Temperature of the first epoch (> 0).
        end: Temperature of the last epoch (> 0).
        kind: "exponential", "linear" or "constant" (always `start`).
    """

    start: float = 3.0
    end: float = 0.03
    kind: str = "exponential"

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"temperature schedule must be one of {SCHEDULES}, got "
                             f"{self.kind!r}")
        if self.start <= 0 or self.end <= 0:
            raise ConfigError(f"temperatures must be > 0, got start={self.start}, "
                             f"end={self.end}")

    def __call__(self, epoch, total_epochs):
        """Temperature of `epoch` (0-based) in a search of `total_epochs` epochs."""
        if self.kind == "constant" or total_epochs <= 1:
            return float(self.start)
        t = min(max(epoch, 0), total_epochs - 1) / (total_epochs - 1)
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * t)
        return float(self.start * (self.end / self.start) ** t)
