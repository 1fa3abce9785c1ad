"""Derived CAS networks: a Keras functional model built from a genotype."""

import math

import keras

from tf_nas_seg.networks.plan import cas_genotype_plan, cas_plan, plan_macs, run_plan
from tf_nas_seg.networks.stem import normalization_layer
from tf_nas_seg.space.genotype import GenotypeError


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
    normalize = normalization_layer()
    plan = cas_genotype_plan(genotype, num_classes, layout, input_shape)
    layers = plan.lazy_layers()
    images = keras.Input(input_shape, name="images")
    logits = run_plan(plan, layers, normalize(images), images)
    return keras.Model(images, logits, name=name)


def cas_network_macs(model, layout, height, width):
    """Exact MACs of a network built by `build_cas_network` at one input size.

    Walks the network's plan (read back from the model's cells) over the model's named
    layers, so it needs no tracing and counts what `tf_nas_seg.ops.macs` defines
    (convolutions only).
    """
    cells = [model.get_layer(f"cell_{spec.index}") for spec in layout.cells()]
    normal = next((c.genotype for c in cells if not c.reduction), None)
    reduce = next((c.genotype for c in cells if c.reduction), None)
    names = {layer.name: layer for layer in model.layers}
    multiscale = names["ms_cell"].genotype if "ms_cell" in names else None
    plan = cas_plan(layout, names["head"].num_classes, height, width, normal=normal,
                    reduce=reduce, multiscale=multiscale)
    return plan_macs(plan, names)


def count_trainable_params(model):
    """Trainable parameters (BN moving statistics excluded, as papers count them)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
