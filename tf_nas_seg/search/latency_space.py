"""The search-space description a latency table records, from a search's settings."""

from tf_nas_seg.datasets import DATASET_CLASSES


def space_from_configs(search, latency):
    """The JSON-able search-space description a table records (see SpaceProfile).

    Args:
        search: The SearchConfig of the search the table is for.
        latency: The LatencyConfig (its class count and whether CAS's multi-scale cell
            is included).
    """
    from tf_nas_seg.search.methods import get_method

    classes = latency.num_classes or DATASET_CLASSES.get(search.dataset,
                                                         search.synthetic_classes)
    return get_method(search.method).latency_space(search, latency, classes)
