"""Export for serving: TF Serving SavedModel, TF-TRT, TFLite and ONNX (`bin/export`)."""

from tf_nas_seg.export.artifact_runner import (FORMATS, ArtifactError, ArtifactRunner,
                                               detect_format)
from tf_nas_seg.export.exporter import (EXPORT_FORMATS, MODEL_CARD, ExportError,
                                        check_artifact, compare_outputs, export_model,
                                        source_images)
from tf_nas_seg.export.onnx_export import OnnxUnavailableError, convert_onnx, onnx_available
from tf_nas_seg.export.saved_model_export import export_saved_model, serving_function
from tf_nas_seg.export.tflite_export import TFLITE_MODES, convert_tflite
from tf_nas_seg.export.tftrt_export import TFTRT_MISSING, convert_tftrt, tensorrt_available
from tf_nas_seg.export.warmup_requests import (WARMUP_FILE, predict_log_record,
                                               read_warmup_requests, write_warmup_requests)

__all__ = [
    "EXPORT_FORMATS", "FORMATS", "MODEL_CARD", "TFLITE_MODES", "TFTRT_MISSING", "WARMUP_FILE",
    "ArtifactError", "ArtifactRunner", "ExportError", "OnnxUnavailableError",
    "check_artifact", "compare_outputs", "convert_onnx", "convert_tflite", "convert_tftrt",
    "detect_format", "export_model", "export_saved_model", "onnx_available",
    "predict_log_record", "read_warmup_requests", "serving_function", "source_images",
    "tensorrt_available", "write_warmup_requests",
]
