"""The search-space description a latency table records, from a search's settings."""

DATASET_CLASSES = {"camvid": 11, "cityscapes": 19, "cityscapes_tfds": 19}


def space_from_configs(search, latency):
    """The JSON-able search-space description a table records (see SpaceProfile).

    Args:
        search: The SearchConfig of the search the table is for.
        latency: The LatencyConfig (its class count and whether CAS's multi-scale cell
            is included).
    """
    from tf_nas_seg.networks.cas_layout import CASLayout
    from tf_nas_seg.space.genotype import Genotype

    classes = latency.num_classes or DATASET_CLASSES.get(search.dataset,
                                                         search.synthetic_classes)
    if search.method == "autortnet":
        from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout, parse_hyper_cells
        from tf_nas_seg.profiling.autortnet_profile import autortnet_space

        layout = AutoRTNetLayout(hyper_cells=parse_hyper_cells(search.hyper_cells),
                                 channels=search.channels,
                                 channel_growth=search.channel_growth, steps=search.steps,
                                 agg_channels=search.agg_channels,
                                 ms_channels=search.ms_channels)
        return autortnet_space(layout, classes, search.target_height, search.target_width)

    layout = CASLayout(layout=search.layout, channels=search.channels,
                       stem_channels=search.stem_channels, steps=search.steps,
                       low_level_cell=search.low_level_cell,
                       ms_channels=search.ms_channels, ms_steps=search.ms_steps)
    if search.backbone_genotype:
        # As bin/search does in the multi-scale stage: the backbone's recorded layout.
        backbone = Genotype.load(search.backbone_genotype)
        layout = CASLayout(**{**backbone.macro_dict.get("layout", {}),
                              "ms_channels": search.ms_channels,
                              "ms_steps": search.ms_steps})
    return {"method": search.method, "backbone_op_set": search.backbone_op_set,
            "multiscale_op_set": "cas_multiscale" if latency.multiscale else None,
            "layout": layout.to_json(), "num_classes": classes,
            "height": search.target_height, "width": search.target_width}
