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


def _kinds(fields):
    """What differs, in words: device, TensorFlow version, resolution, search space."""
    kinds = []
    for field in fields:
        kind = ("device" if field in ("device", "device_type")
                else "TensorFlow version" if field == "tensorflow"
                else "resolution" if field in ("space.height", "space.width")
                else "search space")
        if kind not in kinds:
            kinds.append(kind)
    return ", ".join(kinds)


def search_table(config, num_classes, height, width):
    """The `--latency_table` of a search, checked against this search and this machine.

    A table measured on another device, with another TensorFlow version, at another
    resolution or for another search space prices networks it was not measured for; it
    is refused, naming each field that differs (the table's value and this run's),
    unless `--allow_foreign_table`, which uses it with a warning listing them. The device
    is described as `bin/latency_table` describes it (`latency.timer.machine_settings`).

    Args:
        config: The SearchConfig (its latency_table, stage, space and
            allow_foreign_table).
        num_classes: Classes of the searched network.
        height: Target height the cost is priced at.
        width: Target width.

    Returns:
        The LatencyTable.

    Raises:
        LatencyTableError: the table is missing, malformed, or foreign (and not allowed).
    """
    from absl import logging

    from tf_nas_seg.latency.table import (IDENTITY_FIELDS, LatencyTable, LatencyTableError,
                                          setting_differences)
    from tf_nas_seg.latency.timer import machine_settings

    table = LatencyTable.load(config.latency_table)
    recorded = table.settings()
    here = machine_settings(recorded.get("device_type"))
    # A CAS backbone search prices no multi-scale cell: a table with one serves it.
    space = space_from_config(
        config.replace(target_height=int(height), target_width=int(width)),
        num_classes=num_classes, multiscale=config.stage == "multiscale")
    expected = {**here, "space": space}
    differences = setting_differences(recorded, {k: expected[k] for k in IDENTITY_FIELDS})
    if not differences:
        return table
    details = "; ".join(f"{field}: {have!r} in the table, {want!r} here"
                        for field, have, want in differences)
    kinds = _kinds(field for field, _, _ in differences)
    if not config.allow_foreign_table:
        raise LatencyTableError(
            f"latency table {config.latency_table} was measured for another {kinds} than "
            f"this search ({details}), so its latencies do not price this search's "
            "networks: measure a table here with bin/latency_table --mode=build and the "
            "search's flagfile, or pass --allow_foreign_table to use this one anyway")
    logging.warning("--allow_foreign_table: using latency table %s, measured for another "
                    "%s than this search (%s)", config.latency_table, kinds, details)
    return table
