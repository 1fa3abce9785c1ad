"""Exact multiply-accumulate counts of the layers the search space is built from.

Convention (stated once, used everywhere): MACs count the multiply-accumulates of
convolutions (dense, depthwise and pointwise) at the output size they produce.
Batch normalisation (foldable into the preceding convolution at inference), ReLU,
pooling, additions and bilinear resizing perform no multiplications that survive
deployment-time folding, or none at all, and count zero.
"""

import math


def out_size(size, stride):
    """Spatial size after a 'same'-padded op with this stride (ceil division); None
    (a dynamic size) stays None."""
    if size is None:
        return None
    return int(math.ceil(size / stride))


def conv_macs(height, width, in_channels, out_channels, kernel, stride=1, groups=1):
    """MACs of a 'same'-padded convolution applied to a height x width input.

    Args:
        height: Input height.
        width: Input width.
        in_channels: Input channels.
        out_channels: Output channels.
        kernel: (kh, kw).
        stride: Spatial stride.
        groups: Feature groups (in_channels for a depthwise convolution).

    Returns:
        The number of multiply-accumulates, an int.
    """
    kh, kw = kernel
    return (out_size(height, stride) * out_size(width, stride) * kh * kw
            * (in_channels // groups) * out_channels)
