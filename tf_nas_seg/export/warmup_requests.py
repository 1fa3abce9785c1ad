"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`), without TF Serving.

TF Serving replays these records when it loads a model version, so the first real
request does not pay for graph optimisation and memory allocation. The file is a
TFRecord of serialized `tensorflow.serving.PredictionLog` protos.

NOTE: `tensorflow-serving-api` (where `PredictionLog` lives) requires the `tensorflow`
wheel, which would install a second TensorFlow beside `tensorflow-cpu`. The five messages
we need are therefore declared here, with the same package, names and field numbers as
`tensorflow_serving/apis/{model,predict,prediction_log}.proto`, in a private descriptor
pool (so they never clash with the real ones if both are imported). The wire format is
defined by the field numbers only, so the bytes are what TF Serving reads; a test checks
them against `tensorflow-serving-api` when that package is importable.
"""

import functools

import numpy as np
import tensorflow as tf
from tf_nas_seg.errors import ConfigError
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2

WARMUP_FILE = "tf_serving_warmup_requests"

_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED

# (message, [(field, number, type, type_name, label, oneof index)], oneofs), a subset of
# TF Serving's protos: fields we do not write are left out, which protobuf allows.
_MESSAGES = (
    ("ModelSpec", [("name", 1, _STRING, None, _OPTIONAL, None),
                   ("version", 2, _MESSAGE, ".google.protobuf.Int64Value", _OPTIONAL, 0),
                   ("version_label", 4, _STRING, None, _OPTIONAL, 0),
                   ("signature_name", 3, _STRING, None, _OPTIONAL, None)],
     ["version_choice"]),
    ("PredictRequest", [("model_spec", 1, _MESSAGE, ".tensorflow.serving.ModelSpec",
                         _OPTIONAL, None),
                        ("inputs", 2, _MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry",
                         _REPEATED, None),
                        ("output_filter", 3, _STRING, None, _REPEATED, None)], []),
    ("PredictResponse", [("model_spec", 2, _MESSAGE, ".tensorflow.serving.ModelSpec",
                          _OPTIONAL, None),
                         ("outputs", 1, _MESSAGE,
                          ".tensorflow.serving.PredictResponse.OutputsEntry", _REPEATED,
                          None)], []),
    ("PredictLog", [("request", 1, _MESSAGE, ".tensorflow.serving.PredictRequest", _OPTIONAL,
                     None),
                    ("response", 2, _MESSAGE, ".tensorflow.serving.PredictResponse",
                     _OPTIONAL, None)], []),
    ("PredictionLog", [("predict_log", 6, _MESSAGE, ".tensorflow.serving.PredictLog",
                        _OPTIONAL, 0)], ["log_type"]),
)
_MAPS = {"PredictRequest": "InputsEntry", "PredictResponse": "OutputsEntry"}


def _add_file_with_dependencies(pool, file_descriptor, added):
    for dependency in file_descriptor.dependencies:
        _add_file_with_dependencies(pool, dependency, added)
    if file_descriptor.name not in added:
        proto = descriptor_pb2.FileDescriptorProto()
        file_descriptor.CopyToProto(proto)
        pool.Add(proto)
        added.add(file_descriptor.name)


@functools.cache
def prediction_log_classes():
    """{"ModelSpec", "PredictRequest", "PredictResponse", "PredictLog", "PredictionLog"}
    -> protobuf message classes with TF Serving's wire format."""
    pool = descriptor_pool.DescriptorPool()
    added = set()
    _add_file_with_dependencies(pool, tensor_pb2.DESCRIPTOR, added)
    _add_file_with_dependencies(pool, wrappers_pb2.DESCRIPTOR, added)
    proto = descriptor_pb2.FileDescriptorProto(
        name="tf_nas_seg/export/prediction_log_subset.proto", package="tensorflow.serving",
        syntax="proto3", dependency=[tensor_pb2.DESCRIPTOR.name, wrappers_pb2.DESCRIPTOR.name])
    for name, fields, oneofs in _MESSAGES:
        message = proto.message_type.add(name=name)
        for oneof in oneofs:
            message.oneof_decl.add(name=oneof)
        for field, number, kind, type_name, label, oneof in fields:
            f = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        if name in _MAPS:
            entry = message.nested_type.add(name=_MAPS[name])
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
            entry.field.add(name="value", number=2, type=_MESSAGE, label=_OPTIONAL,
                            type_name=".tensorflow.TensorProto")
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"tensorflow.serving.{name}")) for name, _, _ in _MESSAGES}


def predict_log_record(images, model_name, signature_name="serving_default",
                       input_name="images"):
    """One serialized PredictionLog holding a PredictRequest for `images`.

    Args:
        images: [batch, height, width, 3] uint8 array.
        model_name: The model name TF Serving serves it under.
        signature_name: The signature the request calls.
        input_name: The signature's input key.

    Returns:
        bytes.
    """
    classes = prediction_log_classes()
    request = classes["PredictRequest"]()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    # The TensorProto class of the private pool is not TensorFlow's: copy by bytes.
    request.inputs[input_name].ParseFromString(
        tf.make_tensor_proto(np.asarray(images)).SerializeToString())
    log = classes["PredictionLog"]()
    log.predict_log.request.CopyFrom(request)
    return log.SerializeToString()


def write_warmup_requests(path, image_batches, model_name, signature_name="serving_default",
                          input_name="images"):
    """Writes one PredictionLog record per image batch to the TFRecord file `path`."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for images in image_batches:
            writer.write(predict_log_record(images, model_name, signature_name, input_name))


def read_warmup_requests(path):
    """Parses a warm-up file back: a list of (model name, signature, {input: ndarray})."""
    log_class = prediction_log_classes()["PredictionLog"]
    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = log_class.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ConfigError(f"{path}: a record is not a predict_log")
        request = log.predict_log.request
        inputs = {key: tf.make_ndarray(tensor_pb2.TensorProto.FromString(
            value.SerializeToString())) for key, value in request.inputs.items()}
        requests.append((request.model_spec.name, request.model_spec.signature_name, inputs))
    return requests
