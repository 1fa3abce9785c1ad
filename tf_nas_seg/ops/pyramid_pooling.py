"""PSPNet's pyramid pooling module with fixed bin counts, safe for dynamic input sizes."""

import keras
from keras import ops

from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.macs import conv_macs
from tf_nas_seg.ops.resize_like import ResizeLike


def _bin_matrix(size, bins, dtype):
    """[bins, size] averaging matrix: row i averages [floor(i*size/b), ceil((i+1)*size/b))."""
    index = ops.arange(size)
    rows = ops.arange(bins)
    starts = (rows * size) // bins
    ends = ((rows + 1) * size + bins - 1) // bins
    inside = ops.logical_and(ops.greater_equal(index[None, :], starts[:, None]),
                             ops.less(index[None, :], ends[:, None]))
    weights = ops.cast(inside, dtype)
    return weights / ops.sum(weights, axis=1, keepdims=True)


def adaptive_average_pool(x, bins):
    """Average-pools an NHWC tensor of any (dynamic) size to a bins x bins grid."""
    shape = ops.shape(x)
    rows = _bin_matrix(shape[1], bins, x.dtype)
    cols = _bin_matrix(shape[2], bins, x.dtype)
    return ops.einsum("jw,niwc->nijc", cols, ops.einsum("ih,nhwc->niwc", rows, x))


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class PyramidPooling(keras.layers.Layer):
    """Concatenates x with context pooled to b x b grids (b in `bins`), then a 1x1 conv.

    Each branch average-pools the map to a fixed b x b grid, exactly as PyTorch's
    `adaptive_avg_pool2d` bins it, applies a 1x1 conv-BN-ReLU to channels / len(bins),
    and is resized back bilinearly.

    NOTE: Keras pooling layers need a static window, which a fixed output grid over a
    dynamic input size does not have, and TensorFlow's area resize has no gradient;
    the pooling is therefore two small averaging matrices built from the runtime size
    (`adaptive_average_pool`), which trains, and exports with dynamic height and width.

    Args:
        filters: Output channels of the fusing 1x1 conv.
        bins: Grid sizes of the branches (PSPNet, Fast-SCNN: 1, 2, 3, 6).
    """

    def __init__(self, filters, bins=(1, 2, 3, 6), **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.bins = tuple(int(b) for b in bins)
        self.resize = ResizeLike(name="resize")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.branch_channels = max(1, channels // len(self.bins))
        self.branches = []
        for b in self.bins:
            conv = ConvOp(self.branch_channels, ((1, 1),), name=f"branch{b}")
            conv.build((input_shape[0], b, b, channels))
            self.branches.append(conv)
        self.fuse = ConvOp(self.filters, ((1, 1),), name="fuse")
        self.fuse.build(tuple(input_shape[:3]) + (channels + self.branch_channels * len(self.bins),))

    def call(self, x, training=None):
        pieces = [x]
        for b, conv in zip(self.bins, self.branches):
            pooled = adaptive_average_pool(x, b)
            pieces.append(self.resize(conv(pooled, training=training), x))
        return self.fuse(ops.concatenate(pieces, axis=-1), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (self.filters,)

    def count_macs(self, input_shape):
        """Multiply-accumulates for one (height, width, channels) input."""
        height, width, channels = input_shape
        branch = max(1, channels // len(self.bins))
        total = sum(b * b * channels * branch for b in self.bins)
        return total + conv_macs(height, width, channels + branch * len(self.bins),
                                 self.filters, (1, 1))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "bins": list(self.bins)})
        return config
