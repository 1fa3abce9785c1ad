"""The op library every network of tf_nas_seg is built from (search, derived, profiling)."""

from tf_nas_seg.ops.context_embedding import ContextEmbedding
from tf_nas_seg.ops.conv_op import ConvOp
from tf_nas_seg.ops.factorized_reduce import FactorizedReduce
from tf_nas_seg.ops.gather_expand import GatherExpand
from tf_nas_seg.ops.guided_aggregation import GuidedAggregation
from tf_nas_seg.ops.identity import Identity
from tf_nas_seg.ops.inverted_residual import InvertedResidual
from tf_nas_seg.ops.op_set import (AGGREGATION, AUTORTNET_CELL, CAS_BACKBONE,
                                   CAS_MULTISCALE, DARTS, NONE_OPS, OP_SETS, OpSet,
                                   get_op_set)
from tf_nas_seg.ops.pool_op import PoolOp
from tf_nas_seg.ops.pooled_conv_op import PooledConvOp
from tf_nas_seg.ops.pyramid_pooling import PyramidPooling
from tf_nas_seg.ops.residual_spp import ResidualSPP
from tf_nas_seg.ops.resize_like import ResizeLike, resize_to
from tf_nas_seg.ops.zero import Zero
