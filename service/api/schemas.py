"""Request and response bodies, with the examples that /docs shows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.manifest import SAFE_NAME
from common.scoring import DEFAULT_K

MAX_IMAGES = 1024  # the highest VAE_MAX_IMAGES allowed: the schema's bound on any list of images
Finite = Annotated[float, Field(allow_inf_nan=False)]
Latent = Annotated[list[Finite], Field(min_length=1, max_length=4096)]
OutputFormat = Literal["png", "array"]


class Request(BaseModel):
    # strict: a JSON string is not an int nor a bool, so the body means what its schema says
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(None, pattern=SAFE_NAME, description="model name (default: the default model)")
    version: str | None = Field(None, pattern=SAFE_NAME, description="version (default: the highest)")


class Generating(Request):
    format: OutputFormat = Field(
        "png", description="png: base64 PNG per image; array: x_mean as nested lists"
    )


class UploadsJSON(Request):
    images: list[str] = Field(
        min_length=1, max_length=MAX_IMAGES, description="base64-encoded image files (PNG, JPEG, ...)"
    )


class EncodeJSON(UploadsJSON):
    sample: bool = Field(False, description="also return one z ~ q(z|x) per image")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed of the sampled z")
    return_inputs: bool = Field(False, description="also return what the model saw: x as a PNG per image")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"images": ["iVBORw0KGgo..."], "sample": False}]}
    )


class ScoreJSON(UploadsJSON):
    k: int = Field(DEFAULT_K, ge=1, description="importance samples per image (more: tighter, slower)")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="same seed, same numbers")

    model_config = ConfigDict(json_schema_extra={"examples": [{"images": ["iVBORw0KGgo..."], "k": 100}]})


class DecodeRequest(Generating):
    z: list[Latent] = Field(
        min_length=1, max_length=MAX_IMAGES, description="latents, one row of D numbers per image"
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"z": [[0.0] * 32], "format": "png"}]})


class SampleRequest(Generating):
    n: int = Field(1, ge=1, description="number of samples")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="same seed, same images (default: random)")
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False, description="z = temperature * N(0, I)")

    model_config = ConfigDict(json_schema_extra={"examples": [{"n": 16, "seed": 7, "temperature": 1.0}]})


class LatentEnd(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    z: Latent = Field(description="a latent of D numbers")


class ImageEnd(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    image: str = Field(description="a base64-encoded image, encoded to its mean mu")


# exactly one of z or image: two shapes that no body can match both of, as the schema says too
Endpoint = LatentEnd | ImageEnd


class InterpolateRequest(Generating):
    start: Endpoint
    end: Endpoint
    steps: int = Field(8, ge=2, description="points on the path, both endpoints included")
    method: Literal["linear", "slerp"] = "linear"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"start": {"z": [-1.0] * 32}, "end": {"z": [1.0] * 32}, "steps": 8, "method": "slerp"}
            ]
        }
    )


class ModelNamed(BaseModel):
    model: str
    version: str


class EncodeResponse(ModelNamed):
    latent_dim: int
    mu: list[list[float]]
    sigma: list[list[float]]
    z: list[list[float]] | None = Field(None, description="one z ~ q(z|x) per image, when sample is true")
    seed: int | None = None
    inputs: list[str] | None = Field(None, description="x as base64 PNG per image, when return_inputs")


class ScoreResponse(ModelNamed):
    k: int
    seed: int
    log_px: list[float] = Field(description="log p(x) in nats: the importance-weighted estimate")
    elbo: list[float] = Field(description="the ELBO in nats, from the same samples")
    bits_per_dim: list[float] = Field(description="-log p(x) / (pixels * ln 2)")
    percentile: list[float] | None = Field(
        None, description="0-100: where log p(x) falls among the model's own test images"
    )


class ImagesResponse(ModelNamed):
    images: list[str] | None = Field(None, description="base64 PNG per image (format png)")
    arrays: list[Any] | None = Field(None, description="x_mean [C][H][W] per image (format array)")


class SampleResponse(ImagesResponse):
    z: list[list[float]]
    seed: int


class InterpolateResponse(ImagesResponse):
    z: list[list[float]]


class ModelEntry(ModelNamed):
    default: bool
    manifest: dict[str, Any]


class Limits(BaseModel):
    """What one request may hold: clients split their work to fit."""

    max_images: int
    max_n: int
    max_steps: int
    max_body_bytes: int
    max_image_bytes: int
    max_score_k: int
    max_score_rows: int


class ModelsResponse(BaseModel):
    default_model: str
    models: list[ModelEntry]
    failed: list[dict[str, str]]
    limits: Limits


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str | list[ValidationIssue] = Field(
        description="what is wrong, naming the field and the limit; a list for schema violations"
    )
    field: str | None = Field(None, description="the request field at fault, e.g. files[2], z, n, body")


class V2ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong (the Open Inference Protocol's error body)")
    field: str | None = Field(None, description="the request field at fault")


class ReloadResponse(BaseModel):
    models: list[str] = Field(description="name/version of every model served after the reload")
    failed: list[dict[str, str]] = Field(description="folders refused, and why")
    workers_signalled: bool = Field(description="with several workers: the others were told to reload")
