"""Divides a train split into the two disjoint halves of a bilevel search.

The network weights are trained on one half and the architecture parameters on
the other. Frames of one driving sequence (CamVid) or one city (Cityscapes) are
near-duplicates, so the halves are made group-disjoint, as in CAS, which splits
the Cityscapes train set by city: 9 cities (1599 images) for the weights and the
other 9 (1376 images) for the architecture. The official val split is never part
of a search.
"""

import collections

import numpy as np

from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.segmentation_source import SegmentationSource


def search_split(source: SegmentationSource, seed: int = 0, *, by_group: bool = True
                 ) -> tuple[SegmentationSource, SegmentationSource, dict]:
    """Splits `source` into (weights half, architecture half, record).

    With groups (and `by_group`), groups are assigned greedily: largest group
    first, each to the half with fewer examples so far (ties: the half with fewer
    groups, then the weights half). This is the classic longest-first heuristic
    for balancing two sums; groups of equal size are ordered by a permutation
    drawn from `seed`, so the result is deterministic given the seed. The half
    with more examples trains the weights (as in CAS). For CamVid train this
    gives 0016E5 (204 frames) for the weights and 0006R0 + 0001TP (163) for the
    architecture.

    Without groups (or with `by_group=False`), a permutation drawn from `seed`
    sends the first ceil(N/2) examples to the weights half and the rest to the
    architecture half.

    Both halves keep the source order of their examples.

    Args:
        source: A train split.
        seed: Seed of the tie-break (groups) or of the permutation (no groups).
        by_group: Split by group when the source has groups.

    Returns:
        `(weights_source, arch_source, record)`, where `record` is a JSON-able dict
        with the method, seed, and per half the example count, the group counts
        (group method) and the example names.

    Raises:
        DatasetError: If the source has fewer than 2 examples, or only one group
            while splitting by group.
    """
    n = len(source)
    if n < 2:
        raise DatasetError(f"{source.info.name} has {n} example(s); a search split "
                           f"needs at least 2")
    if source.groups is not None and by_group:
        counts = collections.Counter(source.groups)
        if len(counts) < 2:
            raise DatasetError(
                f"{source.info.name} has a single group {next(iter(counts))!r}, so it "
                f"cannot be split by group; use a split with several sequences/cities "
                f"(e.g. train, not val) or pass by_group=False")
        names = sorted(counts)
        tiebreak = dict(zip(names, np.random.default_rng(seed).permutation(len(names))))
        totals, members = [0, 0], [[], []]
        for group in sorted(names, key=lambda g: (-counts[g], tiebreak[g])):
            half = min((0, 1), key=lambda h: (totals[h], len(members[h]), h))
            totals[half] += counts[group]
            members[half].append(group)
        if totals[1] > totals[0]:
            members.reverse()
        halves = [[i for i, g in enumerate(source.groups) if g in set(m)] for m in members]
        method = "group"
    else:
        order = np.random.default_rng(seed).permutation(n)
        cut = (n + 1) // 2
        halves = [sorted(order[:cut].tolist()), sorted(order[cut:].tolist())]
        members = None
        method = "index"

    record = {"method": method, "seed": seed, "dataset": source.info.name, "num_examples": n}
    subsets = []
    for key, indices, groups in zip(("weights", "arch"), halves, members or (None, None)):
        subset = source.subset(indices)
        entry = {"num_examples": len(indices)}
        if groups is not None:
            entry["groups"] = dict(sorted(collections.Counter(subset.groups).items()))
        entry["names"] = list(subset.names)
        record[key] = entry
        subsets.append(subset)
    return subsets[0], subsets[1], record
