"""Derived AutoRTNet networks: a Keras functional model built from a genotype's plan."""

import keras

from tf_nas_seg.networks.autortnet_layout import autortnet_spec  # noqa: F401 (public)
from tf_nas_seg.networks.plan import autortnet_genotype_plan, plan_macs, run_plan
from tf_nas_seg.networks.stem import normalization_layer


def build_autortnet_network(genotype, num_classes, input_shape=(None, None, 3),
                            width_multiplier=1.0, name="autortnet_network"):
    """Builds the network an AutoRTNet genotype describes, from the shared op library.

    Two stride-2 stem convs, then per hyper-cell h exactly `macro.depths[h]` cells (a
    reduction cell, then normal cells; the next reduction cell takes the last two
    outputs, the two-input rule), the aggregation cell over the three hyper-cell
    outputs, the multi-scale cell (aggregation output and last hyper-cell) and the
    classifier, upsampled to the input size: the genotype's `NetworkPlan`
    (`tf_nas_seg.networks.plan.autortnet_plan`).

    Args:
        genotype: A `Genotype` of method "autortnet" (bin/search --method=autortnet).
        num_classes: Output classes.
        input_shape: (height, width, 3); None for dynamic sizes.
        width_multiplier: Scales every channel count (rounded, at least 1); 1.0 gives the
            searched widths.
        name: Model name.

    Returns:
        A `keras.Model` mapping raw 0..255 RGB images (float32) to logits at the image
        size (standardised inside the graph, as CAS networks).

    Raises:
        GenotypeError: the genotype does not describe an AutoRTNet network.
    """
    plan = autortnet_genotype_plan(genotype, num_classes, input_shape, width_multiplier)
    layers = plan.build_layers()  # all created before the graph, as always
    images = keras.Input(input_shape, name="images")
    x = normalization_layer()(images)
    logits = run_plan(plan, layers, x, images)
    return keras.Model(images, logits, name=name)


def autortnet_network_macs(genotype, num_classes, height, width, width_multiplier=1.0,
                           include_aggregation_edges=True):
    """Exact MACs of `build_autortnet_network(genotype, ...)` at one input size.

    Walks the genotype's plan over its (unbuilt) layers (convolutions only, see
    `tf_nas_seg.ops.macs`), without building a model.

    Args:
        genotype: An AutoRTNet genotype.
        num_classes: Output classes.
        height: Input height.
        width: Input width.
        width_multiplier: As in the builder.
        include_aggregation_edges: False leaves out the aggregation cell's searched
            edges (the part of the network AutoRTNet's cost term does not cover).
    """
    plan = autortnet_genotype_plan(genotype, num_classes, (height, width, 3),
                                   width_multiplier)
    return plan_macs(plan, plan.build_layers(), include_aggregation_edges)
