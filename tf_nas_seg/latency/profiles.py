"""What `bin/latency_table` needs from a search method, as a small registered protocol.

A search method plugs into latency profiling by registering a `SpaceProfile`:

- `supernet_entries(space)`: every `LayerEntry` a network of the space can contain at the
  target resolution: each candidate op on each searched edge (with its `EdgeRef`) and
  each fixed layer (stem, preprocessing, factorized reduce, node sums, concatenations,
  resizes, classifier, upsampling), with its exact input shapes. The table builder
  measures the distinct keys.
- `network_entries(space, genotype)`: the entries of one derived network; the table
  predicts its latency as `LatencyTable.predict(entry keys)`.
- `sample_genotype(space, rng)` and `build_network(space, genotype)`: random derived
  architectures and the Keras model of one (validation measures it end to end).
- `whole_networks(space)` (optional): {network key: genotype} of CAS's c'_o networks.

`space` is the JSON-able dict a table records (method, op sets, widths, classes, target
height and width); the batch is a measurement setting, not part of the space. The same
walker must produce the supernet's and the derived networks' entries, so that every key
a prediction looks up is one the build measured. CAS registers `CASProfile`
(`cas_profile`), AutoRTNet `AutoRTNetProfile` (`autortnet_profile`).
"""

import abc
from tf_nas_seg.errors import ConfigError


class SpaceProfile(abc.ABC):
    """Base class of the per-method latency profiles (see the module docstring)."""

    method = None

    @abc.abstractmethod
    def check_space(self, space):
        """Raises ValueError naming the problem if `space` is not valid for the method."""

    @abc.abstractmethod
    def supernet_entries(self, space):
        """Every LayerEntry a network of the space can contain, at the target size."""

    @abc.abstractmethod
    def network_entries(self, space, genotype):
        """The LayerEntries of the derived network of `genotype` (same walker)."""

    @abc.abstractmethod
    def sample_genotype(self, space, rng, op_probabilities=None):
        """A random derived architecture; `op_probabilities` {op set: [p per op]}."""

    @abc.abstractmethod
    def build_network(self, space, genotype, batch=1):
        """The Keras model of `genotype` at the space's target size."""

    @abc.abstractmethod
    def op_sets(self, space):
        """The op sets of the searched cells (for sampling per-architecture op mixes)."""

    def whole_networks(self, space):
        return {}


PROFILES = {}


def register_profile(profile):
    """Registers a SpaceProfile under its `method`."""
    PROFILES[profile.method] = profile
    return profile


def get_profile(method):
    """The registered profile of `method`; ValueError naming the registered ones."""
    # Importing a profile registers it.
    import tf_nas_seg.latency.autortnet_profile  # noqa: F401
    import tf_nas_seg.latency.cas_profile  # noqa: F401

    if method not in PROFILES:
        raise ConfigError(f"no latency profile for method {method!r}; registered: "
                         f"{sorted(PROFILES)}")
    return PROFILES[method]
