"""Derived networks: Keras functional models built from genotypes."""

from tf_nas_seg.networks.bisenetv2 import build_bisenetv2
from tf_nas_seg.networks.cas_layout import CASLayout, CellSpec
from tf_nas_seg.networks.cas_network import (build_cas_network, cas_network_macs,
                                             count_trainable_params)
from tf_nas_seg.networks.builder import PEERS, build_network, check_genotype, scaled_layout
from tf_nas_seg.networks.fast_scnn import build_fast_scnn
