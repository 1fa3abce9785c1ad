"""The candidate op sets of CAS, AutoRTNet and DARTS, as data plus one builder."""

import dataclasses

from tf_nas_seg.errors import ConfigError
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.identity import Identity
from tf_nas_seg.ops.pool_op import PoolOp
from tf_nas_seg.ops.pooled_conv_op import PooledConvOp
from tf_nas_seg.ops.residual_spp import ResidualSPP
from tf_nas_seg.ops.zero import Zero

# Names of the "no edge" ops: present during search, never derived.
NONE_OPS = ("none", "zero")

_K3 = (3, 3)


@dataclasses.dataclass(frozen=True)
class OpSet:
    """A named, ordered set of candidate ops.

    Attributes:
        name: Registry key, recorded in genotypes and latency tables.
        ops: Op names in logit order (the order of a cell's architecture logits).
        order: Unit order of the weighted ops and of cell preprocessing.
        strided: Whether every op has a stride-2 variant (reduction cells).
        factories: Op name -> factory(channels, strides, affine, name) -> layer.
    """

    name: str
    ops: tuple
    order: str
    strided: bool
    factories: dict = dataclasses.field(repr=False, compare=False)

    def build(self, op_name, channels, strides=1, affine=True):
        """Builds op `op_name` as a Keras layer keeping `channels` channels.

        Args:
            op_name: One of `self.ops`.
            channels: Input and output channels.
            strides: 1, or 2 on the input edges of a reduction cell.
            affine: Learn BN scale and offset (off during DARTS-style search).

        Returns:
            A Keras layer with a `count_macs((h, w, c))` method.

        Raises:
            ValueError: unknown op name or an unsupported stride.
        """
        if op_name not in self.factories:
            raise ValueError(f"op {op_name!r} is not in op set {self.name!r}; its ops are "
                             f"{list(self.ops)}")
        if strides not in (1, 2) or (strides == 2 and not self.strided):
            raise ValueError(f"op set {self.name!r} does not support strides={strides}")
        return self.factories[op_name](channels, strides, affine, op_name)

    @property
    def none_index(self):
        """Index of the no-edge op, or None when the set has none."""
        for i, name in enumerate(self.ops):
            if name in NONE_OPS:
                return i
        return None


def _conv(kernels, dilation=1, separable=False, order="conv_bn_relu"):
    def factory(channels, strides, affine, name):
        return ConvOp(channels, kernels, strides=strides, dilation_rate=dilation,
                      separable=separable, order=order, affine=affine, name=name)
    return factory


def _pool(pool_type, search_bn=False):
    def factory(channels, strides, affine, name):
        del channels
        # DARTS appends a non-affine BN to pools inside its search cells only.
        return PoolOp(pool_type, 3, strides=strides, batch_norm=search_bn and not affine,
                      affine=False, name=name)
    return factory


def _skip(channels, strides, affine, name):
    if strides == 1:
        return Identity(name=name)
    return FactorizedReduce(channels, affine=affine, name=name)


def _zero(channels, strides, affine, name):
    del channels, affine
    return Zero(strides=strides, name=name)


def _pooled(repeats):
    def factory(channels, strides, affine, name):
        return PooledConvOp(channels, repeats=repeats, strides=strides, affine=affine,
                            name=name)
    return factory


def _spp(window):
    def factory(channels, strides, affine, name):
        del channels, strides
        return ResidualSPP(window, affine=affine, name=name)
    return factory


def _make(name, order, strided, factories):
    return OpSet(name=name, ops=tuple(factories), order=order, strided=strided,
                 factories=dict(factories))


CAS_BACKBONE = _make("cas_backbone", "conv_bn_relu", True, {
    "none": _zero,
    "skip_connect": _skip,
    "max_pool_3x3": _pool("max"),
    "avg_pool_3x3": _pool("avg"),
    "conv_3x3": _conv((_K3,)),
    "conv_3x3_x2": _conv((_K3, _K3)),
    "dil_conv_3x3": _conv((_K3,), dilation=2),
    "dil_conv_3x3_x2": _conv((_K3, _K3), dilation=2),
    "sep_conv_3x3_x2": _conv((_K3,) * 2, separable=True),
    "sep_conv_3x3_x4": _conv((_K3,) * 4, separable=True),
    "pooled_conv_3x3": _pooled(1),
    "pooled_conv_3x3_x2": _pooled(2),
})

CAS_MULTISCALE = _make("cas_multiscale", "conv_bn_relu", False, {
    "conv_3x3": _conv((_K3,)),
    "dil_conv_3x3_r2": _conv((_K3,), dilation=2),
    "dil_conv_3x3_r4": _conv((_K3,), dilation=4),
    "dil_conv_3x3_r8": _conv((_K3,), dilation=8),
    "conv_15x1_1x15": _conv(((15, 1), (1, 15))),
    "conv_25x1_1x25": _conv(((25, 1), (1, 25))),
    "spp_8": _spp(8),
    "spp_16": _spp(16),
    "spp_24": _spp(24),
    "skip_connect": _skip,
})

AUTORTNET_CELL = _make("autortnet_cell", "conv_bn_relu", True, {
    "zero": _zero,
    "skip_connect": _skip,
    "max_pool_3x3": _pool("max"),
    "conv_3x3": _conv((_K3,)),
    "conv_3x3_x2": _conv((_K3, _K3)),
    "sep_conv_3x3": _conv((_K3,), separable=True),
    "sep_conv_3x3_x2": _conv((_K3, _K3), separable=True),
    "dil_sep_conv_3x3_r2": _conv((_K3,), dilation=2, separable=True),
    "dil_sep_conv_3x3_r4": _conv((_K3,), dilation=4, separable=True),
    "dil_sep_conv_3x3_r2_x2": _conv((_K3, _K3), dilation=2, separable=True),
})

AGGREGATION = _make("aggregation", "conv_bn_relu", True, {
    "conv_1x1_x2": _conv(((1, 1), (1, 1))),
    "conv_3x3_x2": _conv((_K3, _K3)),
    "dil_sep_conv_3x3_r2_x2": _conv((_K3, _K3), dilation=2, separable=True),
    "dil_sep_conv_3x3_r4_x2": _conv((_K3, _K3), dilation=4, separable=True),
    "dil_sep_conv_3x3_r8_x2": _conv((_K3, _K3), dilation=8, separable=True),
})

# DARTS (Liu et al., ICLR 2019), cnn/operations.py: ReLU-Conv-BN units; sep_conv is two
# separable units, dil_conv one dilated separable unit.
DARTS = _make("darts", "relu_conv_bn", True, {
    "none": _zero,
    "max_pool_3x3": _pool("max", search_bn=True),
    "avg_pool_3x3": _pool("avg", search_bn=True),
    "skip_connect": _skip,
    "sep_conv_3x3": _conv((_K3, _K3), separable=True, order="relu_conv_bn"),
    "sep_conv_5x5": _conv(((5, 5), (5, 5)), separable=True, order="relu_conv_bn"),
    "dil_conv_3x3": _conv((_K3,), dilation=2, separable=True, order="relu_conv_bn"),
    "dil_conv_5x5": _conv(((5, 5),), dilation=2, separable=True, order="relu_conv_bn"),
})

OP_SETS = {s.name: s for s in (CAS_BACKBONE, CAS_MULTISCALE, AUTORTNET_CELL, AGGREGATION,
                               DARTS)}


def get_op_set(name):
    """Returns the registered op set called `name`.

    Raises:
        ValueError: naming the valid op sets.
    """
    if name not in OP_SETS:
        raise ConfigError(f"unknown op set {name!r}; valid op sets: {sorted(OP_SETS)}")
    return OP_SETS[name]
