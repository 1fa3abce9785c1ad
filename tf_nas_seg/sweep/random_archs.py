"""Random architectures of a search space: the baseline a searched network must beat.

Both papers compare their searched networks with networks drawn at random from the same
space (AutoRTNet Table 3: searched 72.9% against random 66.7 +- 2.5% mIoU). A random
architecture here is one draw of every decision the search makes, uniformly: an op of
the space for each kept edge and two distinct inputs for each node (the derived-network
rule), and for AutoRTNet each hyper-cell's depth and each aggregation edge's op. The
sampler is the latency profile's (`SpaceProfile.sample_genotype`, with uniform op
probabilities), so every random network is one the latency table can price and the
network builder can build.

With a latency band, draws whose table prediction falls outside
[low * (1 - band), high * (1 + band)] are rejected, (low, high) being the predicted
latencies of the searched networks they are compared with: equal-latency comparisons
need random networks of similar latency, not the space's average.
"""

import dataclasses

import numpy as np

from tf_nas_seg.errors import UserError
from tf_nas_seg.latency.profiles import get_profile
from tf_nas_seg.space.genotype import Genotype


class SamplingError(UserError):
    """Not enough random architectures could be drawn; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class RandomArch:
    """One sampled architecture and the table's prediction of it (None without a table)."""

    genotype: Genotype
    predicted_ms: float
    draws: int  # draws it took (rejections included), for the record

    def to_json(self):
        return {"genotype": self.genotype.to_json(), "predicted_ms": self.predicted_ms,
                "draws": self.draws}


def without_multiscale(space):
    """The space of a CAS backbone-stage search: no multi-scale cell is sampled."""
    if space.get("method") == "autortnet" or not space.get("multiscale_op_set"):
        return space
    return {**space, "multiscale_op_set": None}


def predict_ms(table, space, genotype):
    """The table's (calibrated) prediction of the derived network of `genotype`."""
    profile = get_profile(space["method"])
    return float(table.predict([e.key for e in profile.network_entries(space, genotype)]))


def sample_random_archs(space, count, seed, table=None, band=None, max_draws=20000,
                        stream=7919):
    """`count` random architectures of `space`, optionally inside a latency band.

    Args:
        space: The search-space dict a latency table records (`table.meta["space"]`,
            or `search.latency_space.space_from_config`), with the multi-scale cell
            removed for a CAS backbone search (`without_multiscale`).
        count: Architectures wanted.
        seed: Seed of the draws; the same seed gives the same architectures.
        table: A LatencyTable of the space, to predict each draw's latency (needed for
            `band`).
        band: None, or (low_ms, high_ms, fraction): keep draws predicted within
            [low * (1 - fraction), high * (1 + fraction)].
        max_draws: Draws tried in all before giving up.
        stream: Names the random stream with `seed`: two groups of random networks of
            one sweep (the wide band and the near one) draw from different streams.

    Returns:
        [RandomArch], in the order drawn.

    Raises:
        SamplingError: a band without a table, or fewer than `count` draws in the band
            after `max_draws`.
    """
    if band is not None and table is None:
        raise SamplingError("a latency band needs the latency table to predict each "
                            "random network's latency: pass --cost=latency with a table, "
                            "or --random_band=0")
    profile = get_profile(space["method"])
    rng = np.random.default_rng([seed, stream])  # a stream of its own
    lo = hi = None
    if band is not None:
        low, high, fraction = band
        lo, hi = low * (1.0 - fraction), high * (1.0 + fraction)
    archs, draws, since = [], 0, 0
    while len(archs) < count:
        if draws >= max_draws:
            raise SamplingError(
                f"only {len(archs)} of {count} random architectures had a predicted "
                f"latency in [{lo:.2f}, {hi:.2f}] ms after {max_draws} draws; widen "
                "--random_band or lower --random")
        genotype = profile.sample_genotype(space, rng)
        draws += 1
        since += 1
        predicted = predict_ms(table, space, genotype) if table is not None else None
        if lo is not None and not lo <= predicted <= hi:
            continue
        archs.append(RandomArch(genotype, predicted, since))
        since = 0
    return archs
