"""Settings of the training-time augmentation of images and label maps."""

import dataclasses
from tf_nas_seg.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """What `make_dataset` does to each example, in this order.

    1. `resize`: a fixed resize of image (bilinear, antialiased) and mask
       (nearest), e.g. to train at half resolution.
    2. `scale_range`: a random rescale by a factor drawn uniformly from the range.
    3. A random crop to `crop_size` (by default the size after step 1), padding
       the image with 0 and the label with the ignore label when the scaled image
       is smaller than the crop.
    4. `flip`: a random horizontal flip.

    Attributes:
        flip: Flip horizontally with probability 1/2.
        scale_range: `(low, high)` scale factors, or None for no rescaling.
        crop_size: `(height, width)` of the crop, or None to crop back to the
            (resized) input size when rescaling, and not crop otherwise.
        resize: `(height, width)` of a fixed resize before the random steps, or
            None.
    """

    flip: bool = True
    scale_range: tuple[float, float] | None = (0.5, 2.0)
    crop_size: tuple[int, int] | None = None
    resize: tuple[int, int] | None = None

    def __post_init__(self):
        if self.scale_range is not None:
            low, high = self.scale_range
            if not 0 < low <= high:
                raise ConfigError(f"scale_range must satisfy 0 < low <= high, got "
                                 f"{self.scale_range}")
            object.__setattr__(self, "scale_range", (float(low), float(high)))
        for field in ("crop_size", "resize"):
            value = getattr(self, field)
            if value is not None:
                if len(value) != 2 or min(value) < 1:
                    raise ConfigError(f"{field} must be (height, width) with positive "
                                     f"sizes, got {value}")
                object.__setattr__(self, field, (int(value[0]), int(value[1])))

    def output_size(self, input_size: tuple[int, int] | None) -> tuple[int, int] | None:
        """The `(height, width)` of augmented examples whose input size is given.

        Args:
            input_size: Size of the source examples, or None when sizes differ.

        Returns:
            The output size, or None when it depends on the example.
        """
        if self.crop_size is not None:
            return self.crop_size
        if self.resize is not None:
            return self.resize
        return input_size
