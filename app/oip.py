"""The Open Inference Protocol v2 (KServe, Triton, Seldon): an inference request's tensor → uint8
images, and the model's answer → an inference response.

The model has one input, `image` (UINT8 grey levels 0..255, or FP32 in [0, 1], bright ink on black
as in MNIST, shape [N, H, W] or [N, H·W]), and two outputs, `probabilities` (FP32 [N, K], q(y | x))
and `novelty` (FP32 [N]). FP32 inputs are rounded to the 256 grey levels the model is served on,
so k/255 gives exactly the answer of the UINT8 value k.

Tensor data comes as JSON (`data`, flat or nested, row-major) or, with Triton's binary tensor
extension that `tritonclient.http` uses by default, as raw little-endian bytes after the JSON
header (`Inference-Header-Content-Length` bytes long, each input's `binary_data_size` in its
parameters). Outputs are returned the same way when asked for (`binary_data` on an output, or
`binary_data_output` on the request).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

INPUT = "image"
OUTPUTS = ("probabilities", "novelty")
INPUT_DATATYPES = {"UINT8": np.dtype("<u1"), "FP32": np.dtype("<f4")}
HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]


class ProtocolError(Exception):
    """A request the protocol refuses: answered `{"error": message}` with `status`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[float] | None = None
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class ProtocolErrorBody(BaseModel):
    error: str


_TENSOR_PARAMETERS = {"type": "object", "additionalProperties": True}
INFERENCE_REQUEST_SCHEMA = {  # the request body, as the protocol defines it (parsed by `parse_request`)
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _TENSOR_PARAMETERS,
        "inputs": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string", "example": INPUT},
                    "shape": {"type": "array", "items": {"type": "integer"}, "example": [1, 784]},
                    "datatype": {"type": "string", "enum": list(INPUT_DATATYPES), "example": "UINT8"},
                    "parameters": _TENSOR_PARAMETERS,
                    "data": {"type": "array", "items": {}},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string", "enum": list(OUTPUTS)}, "parameters": _TENSOR_PARAMETERS}},
        },
    },
}


def model_metadata(name: str, model_id: str, image_shape: tuple[int, int], n_classes: int) -> ModelMetadata:
    return ModelMetadata(
        name=name, versions=[model_id], platform="pytorch_adgm",
        inputs=[MetadataTensor(name=INPUT, datatype="UINT8", shape=[-1, *image_shape])],
        outputs=[MetadataTensor(name="probabilities", datatype="FP32", shape=[-1, n_classes]),
                 MetadataTensor(name="novelty", datatype="FP32", shape=[-1])],
    )


@dataclass(frozen=True)
class InferenceRequest:
    id: str | None
    images: np.ndarray  # uint8 (N, H, W)
    outputs: list[tuple[str, bool]]  # (name, as binary data), in the order asked for

    def wants(self, output: str) -> bool:
        return any(name == output for name, _binary in self.outputs)


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object.")
    return value


def _flatten(data: Any, out: list) -> None:
    if isinstance(data, list):
        for item in data:
            _flatten(item, out)
    else:
        out.append(data)


def _json_values(data: Any, datatype: str, count: int) -> np.ndarray:
    values: list = []
    _flatten(data, values)
    if len(values) != count:
        raise ProtocolError(f"input '{INPUT}' has {len(values)} values in 'data'; its shape needs {count}.")
    if datatype == "UINT8":
        if not all(type(v) is int and 0 <= v <= 255 for v in values):
            raise ProtocolError(f"input '{INPUT}' of datatype UINT8 must hold integers 0..255.")
    elif not all(type(v) in (int, float) for v in values):
        raise ProtocolError(f"input '{INPUT}' of datatype FP32 must hold numbers.")
    return np.asarray(values, dtype=INPUT_DATATYPES[datatype])


def _binary_values(binary: memoryview, size: Any, datatype: str, count: int) -> np.ndarray:
    dtype = INPUT_DATATYPES[datatype]
    if type(size) is not int or size != count * dtype.itemsize:
        raise ProtocolError(f"input '{INPUT}' says binary_data_size {size!r}; {count} {datatype} values take "
                            f"{count * dtype.itemsize} bytes.")
    if size > len(binary):
        raise ProtocolError(f"input '{INPUT}' says binary_data_size {size}, but only {len(binary)} bytes follow the "
                            f"JSON header.")
    return np.frombuffer(binary[:size], dtype=dtype)


def _shape(value: Any, image_shape: tuple[int, int], max_images: int) -> tuple[int, ...]:
    height, width = image_shape
    wanted = f"[N, {height}, {width}] or [N, {height * width}]"
    if not isinstance(value, list) or not all(type(d) is int for d in value):
        raise ProtocolError(f"input '{INPUT}' needs a shape, a list of integers: {wanted}.")
    if tuple(value[1:]) not in ((height, width), (height * width,)):
        raise ProtocolError(f"input '{INPUT}' has shape {value}; this model takes {wanted}.")
    if not 1 <= value[0] <= max_images:
        raise ProtocolError(f"input '{INPUT}' has {value[0]} images; send 1 to {max_images} at a time.")
    return tuple(value)


def _as_images(values: np.ndarray, datatype: str, n: int, image_shape: tuple[int, int]) -> np.ndarray:
    if datatype == "FP32":
        if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
            raise ProtocolError(f"input '{INPUT}' of datatype FP32 must hold grey levels in [0, 1].")
        values = np.rint(values.astype(np.float64) * 255)
    return values.astype(np.uint8).reshape(n, *image_shape)


def _outputs(header: dict) -> list[tuple[str, bool]]:
    parameters = _object(header.get("parameters", {}), "'parameters'")
    binary_default = parameters.get("binary_data_output") is True
    requested = header.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in OUTPUTS]
    if not isinstance(requested, list) or not requested:
        raise ProtocolError(f"'outputs' must be a non-empty list of outputs to return: {', '.join(OUTPUTS)}.")
    outputs = []
    for item in requested:
        item = _object(item, "each of 'outputs'")
        name = item.get("name")
        if name not in OUTPUTS:
            raise ProtocolError(f"unknown output {name!r}: this model has {', '.join(OUTPUTS)}.")
        if name in (seen[0] for seen in outputs):
            raise ProtocolError(f"output {name!r} is asked for twice.")
        binary = _object(item.get("parameters", {}), f"parameters of output {name!r}").get("binary_data")
        outputs.append((name, binary_default if binary is None else binary is True))
    return outputs


def parse_request(body: bytes, header_length: str | None, image_shape: tuple[int, int],
                  max_images: int) -> InferenceRequest:
    """The images and wanted outputs of an inference request; ProtocolError names what is wrong."""
    if header_length is None:
        head, binary = body, memoryview(b"")
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ProtocolError(f"{HEADER_LENGTH} is {header_length!r}; the body has {len(body)} bytes.")
        head, binary = body[:int(header_length)], memoryview(body)[int(header_length):]
    try:
        header = json.loads(head)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"the inference request is not valid JSON ({type(error).__name__}).") from None
    header = _object(header, "the inference request")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ProtocolError(f"'inputs' must list exactly one input, '{INPUT}'.")
    tensor = _object(inputs[0], "the input")
    if tensor.get("name") != INPUT:
        raise ProtocolError(f"unknown input {tensor.get('name')!r}: this model's input is '{INPUT}'.")
    datatype = tensor.get("datatype")
    if datatype not in INPUT_DATATYPES:
        raise ProtocolError(f"input '{INPUT}' has datatype {datatype!r}; this model takes "
                            f"{' or '.join(INPUT_DATATYPES)}.")
    shape = _shape(tensor.get("shape"), image_shape, max_images)
    count = math.prod(shape)
    size = _object(tensor.get("parameters", {}), f"parameters of input '{INPUT}'").get("binary_data_size")
    if size is not None:
        values = _binary_values(binary, size, datatype, count)
        unclaimed = len(binary) - size
    elif "data" in tensor:
        values, unclaimed = _json_values(tensor["data"], datatype, count), len(binary)
    else:
        raise ProtocolError(f"input '{INPUT}' has neither 'data' nor a binary_data_size parameter.")
    if unclaimed:
        raise ProtocolError(f"{unclaimed} bytes after the JSON header belong to no input.")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string.")
    return InferenceRequest(request_id, _as_images(values, datatype, shape[0], image_shape), _outputs(header))


def encode_response(request: InferenceRequest, model_name: str, model_version: str, probabilities: np.ndarray,
                    novelty: np.ndarray | None) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON alone, or a JSON header followed by binary outputs.
    `novelty` may be None when the request does not ask for it."""
    tensors = {"probabilities": probabilities, "novelty": novelty}
    outputs, binary = [], []
    for name, as_binary in request.outputs:
        tensor = np.asarray(tensors[name], "<f4")
        output = {"name": name, "datatype": "FP32", "shape": list(tensor.shape)}
        if as_binary:
            binary.append(tensor.tobytes())
            output["parameters"] = {"binary_data_size": len(binary[-1])}
        else:
            output["data"] = [float(v) for v in tensor.reshape(-1)]
        outputs.append(output)
    answer = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request.id is not None:
        answer["id"] = request.id
    head = json.dumps(answer).encode()
    if not binary:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(binary), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
