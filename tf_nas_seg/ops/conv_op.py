"""A stack of convolution units: the weighted candidate ops of every op set."""

import keras
from keras import layers

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.macs import conv_macs, out_size

ORDERS = ("conv_bn_relu", "relu_conv_bn")


def convolve(conv, x):
    """`conv(x)` for a Keras `Conv2D` or `DepthwiseConv2D` layer (no bias, no
    activation, channels last), through the TensorFlow call Keras's own makes
    (`tf.nn.convolution`, `tf.nn.depthwise_conv2d`: same arguments, so the same
    kernels and values); other layers and backends: `conv(x)`.

    NOTE: Keras's `Layer.__call__` and its backend `conv` cost ~3.5 ms of Python per
    convolution when a function is traced, 3.9 s of the CAS demo search step's trace
    (1,126 convolutions, 432 of them depthwise); this path costs a fraction of that.
    The layer still owns and builds its kernel, so checkpoints and saved models are
    unchanged. A layer under a mixed-precision policy (kernel and input of different
    dtypes) goes through Keras, which casts.
    """
    if keras.backend.backend() != "tensorflow":
        return conv(x)
    import tensorflow as tf

    if (type(conv) not in (layers.Conv2D, layers.DepthwiseConv2D) or not tf.is_tensor(x)
            or not conv.built or conv.use_bias
            or conv.activation is not keras.activations.linear
            or conv.data_format != "channels_last" or conv.kernel.dtype != x.dtype):
        return conv(x)
    strides, dilations = list(conv.strides), list(conv.dilation_rate)
    if type(conv) is layers.Conv2D:
        if conv.groups != 1:
            return conv(x)
        return tf.nn.convolution(x, conv.kernel.value, strides, conv.padding.upper(),
                                 data_format="NHWC", dilations=dilations)
    if max(strides) > 1 and max(dilations) > 1:
        return conv(x)  # Keras decomposes it
    if max(dilations) > 1:
        return tf.nn.depthwise_conv2d(x, conv.kernel.value, [1, *strides, 1],
                                      conv.padding.upper(), data_format="NHWC",
                                      dilations=dilations)
    # Undilated: the kernel tf.nn.depthwise_conv2d reaches, without the constants its
    # space-to-batch wrapper makes on the way (one to four per convolution traced).
    return tf.raw_ops.DepthwiseConv2dNative(
        input=x, filter=conv.kernel.value, strides=[1, *strides, 1],
        padding=conv.padding.upper(), data_format="NHWC", dilations=[1, 1, 1, 1])


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ConvOp(keras.layers.Layer):
    """One or more convolution units applied in sequence.

    A unit is a dense or separable (depthwise + pointwise) convolution with batch
    normalisation and ReLU, in the order CAS and AutoRTNet use ("conv_bn_relu") or the
    order of DARTS ("relu_conv_bn"). The first unit carries the stride; every unit carries
    the dilation. Examples: CAS "3x3 conv x2" is `kernel_sizes=((3, 3), (3, 3))`; CAS
    "15x1 then 1x15" is `kernel_sizes=((15, 1), (1, 15))`; DARTS "sep_conv_3x3" is two
    separable units in "relu_conv_bn" order.

    Args:
        filters: Output channels of every unit.
        kernel_sizes: Sequence of (kh, kw), one per unit.
        strides: Stride of the first unit, 1 or 2.
        dilation_rate: Dilation of every unit.
        separable: Depthwise + pointwise convolutions instead of dense ones.
        order: "conv_bn_relu" or "relu_conv_bn".
        affine: Whether batch normalisation learns a scale and an offset (DARTS turns
            this off during search).
    """

    def __init__(self, filters, kernel_sizes=((3, 3),), strides=1, dilation_rate=1,
                 separable=False, order="conv_bn_relu", affine=True, **kwargs):
        super().__init__(**kwargs)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides}")
        if strides > 1 and dilation_rate > 1 and dilation_rate % strides:
            raise ValueError(
                f"a strided dilated conv needs dilation_rate divisible by strides, got "
                f"dilation_rate={dilation_rate}, strides={strides}")
        self.filters = int(filters)
        self.kernel_sizes = tuple(tuple(int(k) for k in ks) for ks in kernel_sizes)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.separable = bool(separable)
        self.order = order
        self.affine = bool(affine)
        self.units = []
        for i, kernel in enumerate(self.kernel_sizes):
            stride = self.strides if i == 0 else 1
            dilation = self.dilation_rate
            # NOTE: TensorFlow convolutions refuse stride > 1 together with dilation > 1.
            # A stride-s conv with dilation d (d divisible by s) reads only every s-th
            # pixel, so it equals a dilation d/s conv over the input subsampled by s,
            # centred as PyTorch's symmetric padding centres it (DARTS reduction cells).
            subsample = stride > 1 and dilation > 1
            if subsample:
                dilation //= stride
                stride = 1
            convs = []
            if self.separable:
                convs.append(layers.DepthwiseConv2D(
                    kernel, strides=stride, dilation_rate=dilation, padding="same",
                    use_bias=False, name=f"dw{i}"))
                convs.append(layers.Conv2D(self.filters, 1, use_bias=False, name=f"pw{i}"))
            else:
                convs.append(layers.Conv2D(
                    self.filters, kernel, strides=stride, dilation_rate=dilation,
                    padding="same", use_bias=False, name=f"conv{i}"))
            bn = BatchNorm(affine=self.affine, name=f"bn{i}")
            self.units.append((self.strides if subsample else 1, convs, bn))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for subsample, convs, bn in self.units:
            if subsample > 1:
                shape = (shape[0], None, None, shape[3])
            for conv in convs:
                conv.build(shape)
                shape = conv.compute_output_shape(shape)
            bn.build(shape)

    def call(self, x, training=None):
        for subsample, convs, bn in self.units:
            if self.order == "relu_conv_bn":
                x = keras.ops.relu(x)
            if subsample > 1:
                x = x[:, ::subsample, ::subsample, :]
            for conv in convs:
                x = convolve(conv, x)
            x = bn(x, training=training)
            if self.order == "conv_bn_relu":
                x = keras.ops.relu(x)
        return x

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else out_size(size, self.strides)
        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)

    def count_macs(self, input_shape):
        """Multiply-accumulates for one (height, width, channels) input."""
        height, width, channels = input_shape
        total = 0
        for i, kernel in enumerate(self.kernel_sizes):
            stride = self.strides if i == 0 else 1
            if self.separable:
                total += conv_macs(height, width, channels, channels, kernel, stride,
                                   groups=channels)
                height, width = out_size(height, stride), out_size(width, stride)
                total += conv_macs(height, width, channels, self.filters, (1, 1))
            else:
                total += conv_macs(height, width, channels, self.filters, kernel, stride)
                height, width = out_size(height, stride), out_size(width, stride)
            channels = self.filters
        return total

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "separable": self.separable,
            "order": self.order,
            "affine": self.affine,
        })
        return config
