"""The Open Inference Protocol (KServe V2), beside the native API, for clients that already speak it
(tritonclient, KServe's and MLServer's clients).

The encoder and decoder of model ``<name>`` are the V2 models ``<name>-encoder`` and
``<name>-decoder``; their tensors are named as in the ONNX files. Tensors are FP32, in JSON (flat or
nested ``data``) or as raw bytes after the JSON header (the binary tensor data extension, which
tritonclient uses by default). Errors are ``{"error": "..."}``, as the protocol has them. Inference
goes through the same dynamic batchers as the native endpoints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from common.manifest import Network
from service.api.bodies import request_body
from service.api.deps import engine_of, registry_of
from service.api.errors import documented
from service.api.routing import DirectRoute
from service.api.schemas import V2ErrorResponse
from service.core.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable
from service.core.model import NETWORKS, Model, TensorSpec
from service.metrics import IMAGES, child

router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=DirectRoute)
HEADER_LENGTH = "inference-header-content-length"  # JSON bytes before the binary tensors
PLATFORM = "onnxruntime_onnx"
MAX_DIMS = 8
JSON_NUMBER_BYTES = 32  # "-1.2345678901234567e-308, " and spaces: more than a float32 needs
MAX_VALUES = 1 << 24  # values of one JSON tensor: more than the largest input the limits let through


class TensorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class OutputWanted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[TensorIn]
    outputs: list[OutputWanted] | None = None


def _v2_model(request: Request, name: str, version: str | None) -> tuple[Model, Network]:
    """``<model>-encoder`` or ``<model>-decoder`` -> the loaded model and which network."""
    base, _, suffix = name.rpartition("-")
    catalog = registry_of(request).catalog
    network = next((net for net in NETWORKS if net == suffix), None)
    if network is None or base not in catalog.names():
        served = [f"{n}-{net}" for n in catalog.names() for net in NETWORKS]
        raise NotFound("model", f"no model named {name!r}; available: {', '.join(served) or 'none'}")
    model = catalog.get(base, version)
    request.state.model, request.state.version = model.name, model.version
    return model, network


def _most_json_bytes(model: Model, network: Network, max_rows: int) -> int:
    """The most JSON a request may hold: its input's values for ``max_rows`` rows, and room to spare."""
    (spec,) = model.signatures[network].inputs
    return max_rows * math.prod(d for d in spec.shape[1:]) * JSON_NUMBER_BYTES + 65536


def _metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": "FP32", "shape": list(spec.shape)}


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": "vae-service", "version": request.app.version, "extensions": ["binary_tensor_data"]}


@router.get("/health/live", summary="Liveness: 200 while the process answers")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Readiness: 200 when every model found at start-up is loaded, else 400")
async def ready(request: Request) -> Response:
    ok = registry_of(request).catalog.ready
    return Response(
        orjson.dumps({"ready": ok}), status_code=200 if ok else 400, media_type="application/json"
    )


METADATA_ERRORS = documented(401, 404, model=V2ErrorResponse)


@router.get("/models/{name}", summary="Model metadata (its highest version)", responses=METADATA_ERRORS)
@router.get("/models/{name}/versions/{version}", summary="Model metadata", responses=METADATA_ERRORS)
async def model_metadata(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
    model, network = _v2_model(request, name, version)
    signature = model.signatures[network]
    return {
        "name": name,
        "versions": registry_of(request).catalog.versions(model.name),
        "platform": PLATFORM,
        "inputs": [_metadata(s) for s in signature.inputs],
        "outputs": [_metadata(s) for s in signature.outputs],
    }


READY_ERRORS = {**METADATA_ERRORS, **documented(400, model=V2ErrorResponse)}


@router.get(
    "/models/{name}/ready", summary="Model readiness: 200 when served, else 400", responses=READY_ERRORS
)
async def model_ready(request: Request, name: str) -> Response:
    return await version_ready(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", summary="Model readiness", responses=READY_ERRORS)
async def version_ready(request: Request, name: str, version: str | None) -> Response:
    try:
        _v2_model(request, name, version)
    except NotFound as e:
        body = {"error": e.detail, "field": e.field}
        return Response(orjson.dumps(body), status_code=400, media_type="application/json")
    return Response(orjson.dumps({"name": name, "ready": True}), media_type="application/json")


def _split_body(request: Request, body: bytes) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor bytes after it (none without the extension)."""
    declared = request.headers.get(HEADER_LENGTH)
    if declared is None:
        return body, b""
    if not declared.isdigit() or int(declared) > len(body):
        raise BadRequest(
            HEADER_LENGTH, f"{declared[:20]!r} is not a length within the body of {len(body)} bytes"
        )
    return body[: int(declared)], body[int(declared) :]


def _input_array(tensor: TensorIn, binary: memoryview, offset: int, max_rows: int) -> tuple[np.ndarray, int]:
    field = f"inputs[{tensor.name}]"
    if tensor.datatype != "FP32":
        raise BadRequest(f"{field}.datatype", f"{tensor.datatype!r}, this model takes FP32")
    if not 1 <= len(tensor.shape) <= MAX_DIMS or min(tensor.shape) < 1:
        raise BadRequest(
            f"{field}.shape", f"{tensor.shape[:MAX_DIMS]}: 1 to {MAX_DIMS} dimensions, each >= 1"
        )
    if tensor.shape[0] > max_rows:
        raise PayloadTooLarge(f"{field}.shape", f"{tensor.shape[0]} rows, more than the limit of {max_rows}")
    count = math.prod(tensor.shape)
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != 4 * count or offset + size > len(binary):
            raise BadRequest(
                f"{field}.binary_data_size", f"{size!r} does not match shape {tensor.shape} of FP32"
            )
        array = np.frombuffer(binary[offset : offset + size], dtype="<f4").reshape(tensor.shape)
        return array, offset + size
    if tensor.data is None:
        raise BadRequest(f"{field}.data", "missing (and no binary_data_size)")
    if count > MAX_VALUES:
        raise PayloadTooLarge(
            f"{field}.shape", f"{tensor.shape} holds {count} values, more than any input here"
        )
    try:
        array = np.asarray(tensor.data, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{field}.data", f"not numbers ({e})") from e
    if array.size != count:
        raise BadRequest(f"{field}.data", f"{array.size} values, shape {tensor.shape} holds {count}")
    return array.reshape(tensor.shape), offset


def _check_input(
    model: Model, network: Network, inputs: list[TensorIn], arrays: list[np.ndarray]
) -> np.ndarray:
    (spec,) = model.signatures[network].inputs
    names = [t.name for t in inputs]
    if names != [spec.name]:
        raise BadRequest(
            "inputs", f"{names}, model {model.name}-{network} takes exactly one input, {spec.name!r}"
        )
    (array,) = arrays
    if array.ndim != len(spec.shape) or array.shape[1:] != spec.shape[1:]:
        raise BadRequest(
            f"inputs[{spec.name}].shape", f"{list(array.shape)}, the model takes {list(spec.shape)}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise Unprocessable(f"inputs[{spec.name}].data", "values must be finite")
    return array


INFER_BODY = request_body(
    InferRequest,
    **{
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "the JSON header (Inference-Header-Content-Length bytes), then the tensors",
        }
    },
)
INFER_ERRORS = documented(400, 401, 404, 408, 413, 422, 503, model=V2ErrorResponse)


@router.post(
    "/models/{name}/infer",
    summary="Inference on the encoder or the decoder",
    openapi_extra=INFER_BODY,
    responses=INFER_ERRORS,
)
async def infer(request: Request, name: str) -> Response:
    return await version_infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference on one version",
    openapi_extra=INFER_BODY,
    responses=INFER_ERRORS,
)
async def version_infer(request: Request, name: str, version: str | None) -> Response:
    model, network = _v2_model(request, name, version)
    header, binary = _split_body(request, await request.body())
    max_rows = engine_of(request).limits.max_images
    most = _most_json_bytes(model, network, max_rows)
    if len(header) > most:  # refused before parsing: 16 MiB of JSON numbers cost 350 MiB and 1.1 s
        raise PayloadTooLarge(
            "body",
            f"{len(header)} bytes of JSON, more than {most}: {max_rows} rows of {name} at "
            f"{JSON_NUMBER_BYTES} bytes a number (send larger inputs as binary tensors)",
        )
    try:
        body = InferRequest.model_validate_json(header)
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(where, f"{first['msg']} ({e.error_count()} problem(s) in the request)") from e
    arrays, offset, view = [], 0, memoryview(binary)
    for tensor in body.inputs:
        array, offset = _input_array(tensor, view, offset, max_rows)
        arrays.append(array)
    x = _check_input(model, network, body.inputs, arrays)
    results = await model.network(network)(x)
    available = dict(zip([s.name for s in model.signatures[network].outputs], results, strict=True))
    wanted = body.outputs or [OutputWanted(name=n) for n in available]
    unknown = [o.name for o in wanted if o.name not in available]
    if unknown:
        raise BadRequest("outputs", f"{unknown} are not outputs of {name}; it has {list(available)}")
    child(IMAGES, f"/v2/{network}", model.name, model.version).inc(len(x))
    all_binary = bool((body.parameters or {}).get("binary_data_output", False))
    return _response(name, model.version, body.id, wanted, available, all_binary)


def _response(
    name: str,
    version: str,
    request_id: str | None,
    wanted: list[OutputWanted],
    available: dict,
    all_binary: bool,
) -> Response:
    outputs, blobs = [], []
    for out in wanted:
        array = np.ascontiguousarray(available[out.name], dtype="<f4")
        entry: dict[str, Any] = {"name": out.name, "datatype": "FP32", "shape": list(array.shape)}
        if (out.parameters or {}).get("binary_data", all_binary):
            blob = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel()
        outputs.append(entry)
    head: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": outputs}
    if request_id is not None:
        head["id"] = request_id
    text = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(
        b"".join([text, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(text))},
    )
