"""The search-space description a latency table records, from a search's settings."""

from tf_nas_seg.datasets import DATASET_CLASSES


def space_from_config(config, num_classes=None, multiscale=None):
    """The JSON-able search-space description a table records (see SpaceProfile).

    Args:
        config: A config with the space and classes sections (`SearchConfig`, or
            `LatencyTableConfig`, whose own `num_classes` and `multiscale` are used).
        num_classes: Classifier outputs; None: the config's `num_classes` if it has
            one; 0 (or no such field): the data set's (synthetic: --synthetic_classes).
        multiscale: Whether CAS's multi-scale cell is included; None: the config's
            `multiscale` if it has one, else True.
    """
    from tf_nas_seg.search.methods import get_method

    if num_classes is None:
        num_classes = getattr(config, "num_classes", 0)
    if multiscale is None:
        multiscale = getattr(config, "multiscale", True)
    classes = num_classes or DATASET_CLASSES.get(config.dataset, config.synthetic_classes)
    return get_method(config.method).latency_space(config, classes, multiscale)
