"""What a latency lookup table predicts for a derived network (beside the measured time)."""

from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.space.genotype import Genotype, GenotypeError


def predict_latency_ms(genotype_path, table, height, width, num_classes,
                       width_multiplier=1.0):
    """The table's prediction for the network of a genotype, or why there is none.

    The prediction is the one `bin/latency_table --mode=validate` checks and the
    search's cost model reads: every layer of the derived network (stem, cells with
    their preprocessing, sums and concatenations, multi-scale cell or module, head,
    upsampling) looked up at the shape it has, plus the call overhead, through the
    table's calibration. A table describes one search space at one resolution, so
    there is no prediction for another resolution, class count, width or layout.

    Args:
        genotype_path: A genotype JSON file.
        table: A `LatencyTable` (schema with a "space").
        height: Input height being timed.
        width: Input width being timed.
        num_classes: Classes of the built network.
        width_multiplier: Channel scaling of the built network.

    Returns:
        (milliseconds, layers looked up, None), or (None, 0, reason).

    Raises:
        LatencyTableError: an entry the network needs is missing (the message names it).
    """
    space = table.meta.get("space") or {}
    if (space.get("height"), space.get("width")) != (height, width):
        return None, 0, (f"the table was measured at {space.get('height')}x"
                         f"{space.get('width')}, not {height}x{width}")
    if space.get("num_classes") != num_classes:
        return None, 0, (f"the table's space has {space.get('num_classes')} classes, the "
                         f"network {num_classes}")
    if width_multiplier != 1.0:
        return None, 0, "the table holds the space at width multiplier 1"
    genotype = Genotype.load(genotype_path)
    if (genotype.method == "autortnet") != (space.get("method") == "autortnet"):
        return None, 0, (f"a {genotype.method} genotype, and the table is for the "
                         f"{space.get('method')} space")
    layout = genotype.macro_dict.get("layout")
    if layout is not None and layout != space.get("layout"):
        return None, 0, (f"the genotype's layout {layout} is not the table's "
                         f"{space.get('layout')}")
    profile = get_profile(space["method"])
    try:
        keys = [e.key for e in profile.network_entries(space, genotype)]
    except GenotypeError as e:
        return None, 0, f"the genotype does not fit the table's space: {e}"
    return table.predict(keys), len(keys), None
