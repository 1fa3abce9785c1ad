"""One entry point that turns a genotype, or a peer's name, into a trainable Keras model."""

import dataclasses

from tf_nas_seg.networks.cas_layout import genotype_layout
from tf_nas_seg.networks.bisenetv2 import build_bisenetv2
from tf_nas_seg.networks.cas_network import build_cas_network
from tf_nas_seg.networks.fast_scnn import build_fast_scnn
from tf_nas_seg.space.genotype import Genotype, GenotypeError
from tf_nas_seg.errors import ConfigError, brief

# Hand-designed networks trained by the same pipeline as searched ones.
PEERS = {"fast_scnn": build_fast_scnn, "bisenetv2": build_bisenetv2}

# The op sets each method's cells may use (derived networks must come from the space the
# method searches, or a cell would be built from ops its method never considered).
_CELL_OP_SETS = {
    "cas": {"normal": ("cas_backbone", "darts"), "reduce": ("cas_backbone", "darts"),
            "multiscale": ("cas_multiscale",)},
    "darts": {"normal": ("darts",), "reduce": ("darts",), "multiscale": ("cas_multiscale",)},
    "autortnet": None,  # checked by the AutoRTNet builder, which knows its cell names
}


def scaled_layout(layout, width_multiplier):
    """A CASLayout with every channel count scaled (rounded, at least 1)."""
    if width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier}")
    if width_multiplier == 1.0:
        return layout
    scale = lambda c: max(1, int(round(c * width_multiplier)))  # noqa: E731
    return dataclasses.replace(layout, channels=scale(layout.channels),
                               stem_channels=scale(layout.stem_channels),
                               ms_channels=scale(layout.ms_channels))


def check_genotype(genotype, method=None):
    """Raises GenotypeError when `genotype` does not fit `method` or its search space."""
    if method is not None and genotype.method != method:
        raise GenotypeError(f"the genotype was searched with method {genotype.method!r}, "
                            f"not {method!r}; pass --method={genotype.method} or a "
                            f"genotype from a {method} search")
    allowed = _CELL_OP_SETS.get(genotype.method)
    if allowed is None:
        return
    for cell_type, cell in genotype.cells:
        if cell_type not in allowed:
            raise GenotypeError(f"a {genotype.method} genotype has no {brief(cell_type)} cell "
                                f"(it may have {sorted(allowed)}); was this file written "
                                "by another method?")
        if cell.op_set not in allowed[cell_type]:
            raise GenotypeError(f"cells.{cell_type}.op_set: {cell.op_set!r} is not a "
                                f"search space of {genotype.method} {cell_type} cells "
                                f"(valid: {list(allowed[cell_type])})")
    for needed in ("normal", "reduce"):
        if not genotype.has_cell(needed):
            raise GenotypeError(f"a {genotype.method} genotype needs a {needed!r} cell; "
                                "pass the genotype.json of a backbone search")


def build_network(genotype=None, num_classes=None, *, peer=None, method=None,
                  input_shape=(None, None, 3), width_multiplier=1.0, name=None):
    """Builds a derived network from a genotype, or a hand-designed peer by name.

    Args:
        genotype: A `Genotype`, or the path of a genotype.json; None with `peer`.
        num_classes: Output classes.
        peer: Name of a hand-designed network in `PEERS` instead of a genotype.
        method: If given, the method the genotype must come from.
        input_shape: (height, width, 3); None for dynamic sizes.
        width_multiplier: Scales every channel count of the network (1.0 = as searched).
        name: Model name; default from the method or peer.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images to logits at the image size.

    Raises:
        GenotypeError: the genotype is malformed or does not fit the method.
        ValueError: neither or both of genotype and peer, or an unknown peer.
    """
    if num_classes is None or num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    if (genotype is None) == (peer is None):
        raise ConfigError("pass exactly one of a genotype (a searched network) and a peer "
                         f"(a hand-designed one: {sorted(PEERS)})")
    if peer is not None:
        if peer not in PEERS:
            raise ConfigError(f"unknown peer network {peer!r}; choose one of {sorted(PEERS)}")
        return PEERS[peer](num_classes, input_shape=input_shape,
                           width_multiplier=width_multiplier, name=name or peer)
    if not isinstance(genotype, Genotype):
        genotype = Genotype.load(genotype)
    check_genotype(genotype, method)
    if genotype.method == "autortnet":
        try:
            from tf_nas_seg.networks.autortnet_network import build_autortnet_network
        except ImportError as e:  # pragma: no cover - present once AutoRTNet lands
            raise GenotypeError("this tf_nas_seg has no AutoRTNet network builder") from e
        kwargs = {"name": name} if name else {}
        return build_autortnet_network(genotype, num_classes, input_shape=input_shape,
                                       width_multiplier=width_multiplier, **kwargs)
    layout = genotype_layout(genotype)
    return build_cas_network(genotype, num_classes, scaled_layout(layout, width_multiplier),
                             input_shape=input_shape, name=name or f"{genotype.method}_network")
