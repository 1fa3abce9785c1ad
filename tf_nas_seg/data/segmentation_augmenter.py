"""Stateless, seeded augmentation of one (image, label map) pair."""

import keras
import tensorflow as tf

from tf_nas_seg.data.augment_config import AugmentConfig
from tf_nas_seg.data.dataset_info import IGNORE_LABEL


class SegmentationAugmenter:
    """Applies an `AugmentConfig` to one example, as a pure function of a seed.

    All randomness comes from the `seed` argument through stateless ops, so the
    same (example, seed) always gives the same output, in any order and on any
    number of parallel `tf.data` workers. That is what makes `make_dataset`
    resumable mid-epoch.

    Keras preprocessing layers do the steps they can do exactly: `Resizing` (fixed
    resize, nearest neighbour for masks) and `RandomFlip`. Keras layers draw their
    randomness from a stateful `SeedGenerator` when called, which is neither
    reproducible under parallel map nor restorable on resume; so the flip is
    driven through the layer's public `get_random_transformation(..., seed=...)`,
    `transform_images` and `transform_segmentation_masks`, with a seed object that
    derives every draw from the example's seed tensor (see `_TensorSeed`).

    Random scaling followed by a random crop is done with `tf.image` stateless ops:
    `RandomZoom` keeps the output size and zooms about the image centre, so it
    cannot yield a scaled image of a new size to crop at a random place, and
    `RandomCrop` needs a static input size, and resizes (bilinearly, masks too)
    instead of padding when the input is smaller than the crop.

    Masks are carried through every geometric step shifted by one (train id `k`
    becomes `k + 1`, the ignore label becomes 0), because Keras and `tf.image`
    fill uncovered pixels with 0; after the shift back, every filled pixel is the
    ignore label instead of class 0. Masks are always resampled with nearest
    neighbour, so no new label values appear.
    """

    def __init__(self, config: AugmentConfig, ignore_label: int = IGNORE_LABEL):
        """Creates the Keras layers the config needs.

        Args:
            config: The augmentation settings.
            ignore_label: Label value of pixels that are not scored.
        """
        self.config = config
        self.ignore_label = ignore_label
        self._resize = None
        self._flip = None
        if config.resize is not None:
            self._resize = keras.layers.Resizing(*config.resize, interpolation="bilinear",
                                                 antialias=True)
        if config.flip:
            # NOTE: RandomFlip selects flipped vs. original with a broadcast
            # tf.where, about 3 ms per 360x480 example on one core (a tf.cond would
            # take under 1 ms); accepted to keep the flip a Keras layer driven
            # through its public transformation API.
            self._flip = keras.layers.RandomFlip("horizontal")
            # NOTE: the flip's methods are called directly below (not through
            # __call__, which would pick the backend), so pin the TF backend that
            # tf.data graphs need.
            self._flip.backend.set_backend("tensorflow")

    def __call__(self, image: tf.Tensor, label: tf.Tensor,
                 seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Augments one example.

        Args:
            image: `[H, W, 3]` image, any real or integer dtype, values 0..255.
            label: `[H, W]` train ids with the ignore label.
            seed: int32/int64 `[2]` stateless seed of this example.

        Returns:
            float32 `[h, w, 3]` image and int32 `[h, w]` label; `(h, w)` is
            `config.output_size((H, W))`.
        """
        flip_seed, scale_seed, crop_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3))
        image = tf.cast(image, tf.float32)
        # Shift so that 0 means "ignore" (see the class docstring); float32 so that
        # the Keras layers, which cast masks to their compute dtype, keep it exact.
        label = tf.cast(label, tf.int32)
        mask = tf.where(label == self.ignore_label, 0, label + 1)
        mask = tf.cast(mask[..., None], tf.float32)

        if self._resize is not None:
            data = self._resize({"images": image, "segmentation_masks": mask})
            image, mask = data["images"], data["segmentation_masks"]
        target = tf.shape(image)[:2] if self.config.crop_size is None else tf.constant(
            self.config.crop_size)

        if self.config.scale_range is not None:
            low, high = self.config.scale_range
            factor = tf.random.stateless_uniform([], scale_seed, low, high)
            size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * factor), tf.int32)
            size = tf.maximum(size, 1)
            image = tf.image.resize(image, size, method="bilinear")
            mask = tf.image.resize(mask, size, method="nearest")

        if self.config.scale_range is not None or self.config.crop_size is not None:
            # Crop image and mask in one tensor so they share the offsets; pad
            # bottom/right with 0 (black image, shifted "ignore" mask) first when
            # the crop is larger.
            both = tf.concat([image, mask], axis=-1)
            shape = tf.shape(both)
            both = tf.image.pad_to_bounding_box(both, 0, 0, tf.maximum(shape[0], target[0]),
                                                tf.maximum(shape[1], target[1]))
            both = tf.image.stateless_random_crop(both, tf.concat([target, [4]], 0),
                                                  crop_seed)
            image, mask = both[..., :3], both[..., 3:]

        if self._flip is not None:
            data = {"images": image, "segmentation_masks": mask}
            transform = self._flip.get_random_transformation(data, training=True,
                                                             seed=_TensorSeed(flip_seed))
            image = self._flip.transform_images(image, transform, training=True)
            mask = self._flip.transform_segmentation_masks(mask, transform, training=True)

        mask = tf.cast(tf.round(mask[..., 0]), tf.int32)
        label = tf.where(mask == 0, self.ignore_label, mask - 1)
        return tf.cast(image, tf.float32), label


class _TensorSeed(keras.random.SeedGenerator):
    """A Keras seed generator that derives its draws from a seed tensor.

    Keras random ops accept an int or a `SeedGenerator` but not a tensor, and a
    real `SeedGenerator` keeps its state in a variable that every draw updates.
    This one has no variable: draw `k` (counted while the graph is traced) uses
    `stateless_fold_in(seed, k)`, so two draws of one layer differ while the whole
    transformation stays a pure function of `seed`.
    """

    def __init__(self, seed: tf.Tensor):
        # NOTE: deliberately no super().__init__(): it would create the state
        # variable this class exists to avoid. `next` is the only method Keras
        # random ops call on a seed generator.
        self._seed = seed
        self._draws = 0
        self.name = "tensor_seed"

    def next(self, ordered=True):
        del ordered
        seed = tf.random.experimental.stateless_fold_in(self._seed, self._draws)
        self._draws += 1
        return seed
