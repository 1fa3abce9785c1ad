"""The search-method registry: every method behind one contract, DARTS included."""

import pytest

from tf_nas_seg.data.dataset_info import DatasetInfo
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.search.latency_space import space_from_config
from tf_nas_seg.search.methods import METHODS, SearchError, SearchMethod, get_method
from tf_nas_seg.search.search_config import SearchConfig

TINY = dict(layout="NR", channels=4, stem_channels=8, steps=2, low_level_cell=0,
            ms_channels=4, ms_steps=2, synthetic_classes=4, target_height=32,
            target_width=32)
INFO = DatasetInfo("tiny", 4, tuple("abcd"), palette=((0, 0, 0),) * 4)


def test_registry_holds_every_method_behind_the_contract():
    assert sorted(METHODS) == ["autortnet", "cas", "darts"]
    for name, method in METHODS.items():
        assert isinstance(method, SearchMethod) and method.name == name
    with pytest.raises(ConfigError, match="registered: \\['autortnet', 'cas', 'darts'\\]"):
        get_method("enas")


def test_darts_searches_its_own_op_set_in_the_cas_network():
    config = SearchConfig(method="darts", **TINY)
    assert config.backbone_op_set == "darts"  # DARTS is its op set
    method = get_method("darts")
    model = method.build_supernet(config, method.layout(config), INFO)
    logits = model.cell_logits()
    assert sorted(logits) == ["normal", "reduce"]
    assert {op_set for _, op_set, _ in logits.values()} == {"darts"}
    genotype = model.derive()
    assert genotype.method == "darts"
    assert genotype.cell("normal").op_set == "darts"


def test_darts_prices_with_the_cas_table_of_the_darts_op_set():
    darts = space_from_config(SearchConfig(method="darts", **TINY))
    cas = space_from_config(SearchConfig(method="cas", backbone_op_set="darts", **TINY))
    assert darts == cas and darts["method"] == "cas"


def test_darts_refuses_the_multiscale_stage():
    config = SearchConfig(method="darts", stage="multiscale", **TINY)
    method = get_method("darts")
    with pytest.raises(SearchError, match="backbone cells only"):
        method.build_supernet(config, method.layout(config), INFO)
