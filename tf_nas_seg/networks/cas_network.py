"""Derived CAS networks: a Keras functional model built from a genotype."""

import math

import keras

from tf_nas_seg.networks.cas_layout import CASLayout, walk_cell_shapes
from tf_nas_seg.networks.stem import SegmentationHead, Stem, normalization_layer
from tf_nas_seg.space.cell import Cell
from tf_nas_seg.space.genotype import GenotypeError
from tf_nas_seg.space.multi_scale_cell import MultiScaleCell


def build_cas_network(genotype, num_classes, layout=None, input_shape=(None, None, 3),
                      name="cas_network"):
    """Builds the network a CAS genotype describes, from the shared op library.

    Args:
        genotype: A `Genotype` with method "cas" and "normal" and "reduce" cells, and
            optionally a "multiscale" cell (then the MSCell feeds the classifier).
        num_classes: Output classes.
        layout: A `CASLayout`; default: the layout recorded in the genotype's macro.
        input_shape: (height, width, 3); None for dynamic sizes.
        name: Model name.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images to logits at the image size.

    Raises:
        GenotypeError: the genotype does not describe a CAS network.
    """
    if genotype.method not in ("cas", "darts"):
        raise GenotypeError(f"a CAS network needs a genotype of method 'cas', got "
                            f"{genotype.method!r}; build it with the builder of its method")
    if layout is None:
        layout = CASLayout(**genotype.macro_dict.get("layout", {}))
    normal, reduce = genotype.cell("normal"), genotype.cell("reduce")
    multiscale = genotype.cell("multiscale") if genotype.has_cell("multiscale") else None
    images = keras.Input(input_shape, name="images")
    x = normalization_layer()(images)
    x = Stem(layout.stem_channels, name="stem")(x)
    s0 = s1 = x
    outputs = []
    for spec in layout.cells():
        cell = Cell(normal.op_set, len(normal.nodes), spec.channels, spec.reduction,
                    spec.reduction_prev, genotype=reduce if spec.reduction else normal,
                    name=f"cell_{spec.index}")
        s0, s1 = s1, cell(s0, s1)
        outputs.append(s1)
    features = s1
    if multiscale is not None:
        features = MultiScaleCell(multiscale.op_set, channels=layout.ms_channels,
                                  genotype=multiscale, name="ms_cell")(
                                      outputs[layout.low_level_cell], s1)
    logits = SegmentationHead(num_classes, name="head")(features, images)
    return keras.Model(images, logits, name=name)


def cas_network_macs(model, layout, height, width):
    """Exact MACs of a network built by `build_cas_network` at one input size.

    Walks the model's named layers with the shapes of `CASLayout.shapes`, so it needs no
    tracing and counts what `tf_nas_seg.ops.macs` defines (convolutions only).
    """
    stem = model.get_layer("stem")
    cells = [model.get_layer(f"cell_{spec.index}") for spec in layout.cells()]
    ms_cell = (model.get_layer("ms_cell")
               if any(layer.name == "ms_cell" for layer in model.layers) else None)
    stem_shape, _ = layout.shapes(height, width, 1)
    visits, features = walk_cell_shapes(cells, stem_shape, ms_cell, layout.low_level_cell)
    total = stem.count_macs((height, width, 3))
    total += sum(cell.count_macs(s0, s1) for cell, s0, s1 in visits)
    return total + model.get_layer("head").count_macs(features)


def count_trainable_params(model):
    """Trainable parameters (BN moving statistics excluded, as papers count them)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
