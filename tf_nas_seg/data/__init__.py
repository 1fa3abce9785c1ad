"""Segmentation data: sources (synthetic, CamVid, Cityscapes), search splits, pipelines."""

from tf_nas_seg.data.augment_config import AugmentConfig
from tf_nas_seg.data.camvid import CAMVID_ENCODING, CAMVID_SPLITS, load_camvid
from tf_nas_seg.data.cityscapes import (CITYSCAPES_ENCODING, CITYSCAPES_SPLITS,
                                        LABEL_ID_TO_TRAIN_ID, load_cityscapes,
                                        load_cityscapes_tfds)
from tf_nas_seg.data.dataset_info import (CAMVID, CITYSCAPES, IGNORE_LABEL, SYNTHETIC,
                                          DatasetInfo, synthetic_info)
from tf_nas_seg.data.errors import DatasetError
from tf_nas_seg.data.label_encoding import LabelEncoding
from tf_nas_seg.data.palette import colorize
from tf_nas_seg.data.pipeline import (batch_stream, batches_per_epoch, epoch_order, make_dataset,
                                     stream_dataset)
from tf_nas_seg.data.registry import DATASET_NAMES, get_info, get_source, open_split
from tf_nas_seg.data.search_split import search_split
from tf_nas_seg.data.segmentation_augmenter import SegmentationAugmenter
from tf_nas_seg.data.segmentation_source import DEFAULT_CACHE_BYTES, SegmentationSource
from tf_nas_seg.data.synthetic import SyntheticStreetScenes, make_street_scenes

__all__ = [
    "AugmentConfig", "CAMVID", "CAMVID_ENCODING", "CAMVID_SPLITS", "CITYSCAPES",
    "CITYSCAPES_ENCODING", "CITYSCAPES_SPLITS", "DATASET_NAMES", "DEFAULT_CACHE_BYTES",
    "DatasetError", "DatasetInfo", "IGNORE_LABEL", "LABEL_ID_TO_TRAIN_ID", "LabelEncoding",
    "SYNTHETIC", "SegmentationAugmenter", "SegmentationSource", "SyntheticStreetScenes",
    "batch_stream", "batches_per_epoch", "colorize", "epoch_order", "get_info", "get_source",
    "load_camvid", "load_cityscapes", "load_cityscapes_tfds", "make_dataset", "open_split",
    "stream_dataset",
    "make_street_scenes", "search_split", "synthetic_info",
]
