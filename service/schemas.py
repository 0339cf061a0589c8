"""Request and response bodies, with the examples that /docs shows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.manifest import SAFE_NAME

Finite = Annotated[float, Field(allow_inf_nan=False)]
Latent = Annotated[list[Finite], Field(min_length=1, max_length=4096)]
OutputFormat = Literal["png", "array"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, pattern=SAFE_NAME, description="model name (default: the default model)")
    version: str | None = Field(None, pattern=SAFE_NAME, description="version (default: the highest)")


class Generating(Request):
    format: OutputFormat = Field(
        "png", description="png: base64 PNG per image; array: x_mean as nested lists"
    )


class EncodeJSON(Request):
    images: list[str] = Field(min_length=1, description="base64-encoded image files (PNG, JPEG, ...)")
    sample: bool = Field(False, description="also return one z ~ q(z|x) per image")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed of the sampled z")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"images": ["iVBORw0KGgo..."], "sample": False}]}
    )


class DecodeRequest(Generating):
    z: list[Latent] = Field(min_length=1, description="latents, one row of D numbers per image")

    model_config = ConfigDict(json_schema_extra={"examples": [{"z": [[0.0] * 32], "format": "png"}]})


class SampleRequest(Generating):
    n: int = Field(1, ge=1, description="number of samples")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="same seed, same images (default: random)")
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False, description="z = temperature * N(0, I)")

    model_config = ConfigDict(json_schema_extra={"examples": [{"n": 16, "seed": 7, "temperature": 1.0}]})


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    z: Latent | None = Field(None, description="a latent of D numbers")
    image: str | None = Field(None, description="a base64-encoded image, encoded to its mean mu")

    @model_validator(mode="after")
    def _exactly_one(self) -> Endpoint:
        if (self.z is None) == (self.image is None):
            raise ValueError("give exactly one of z or image")
        return self


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


class ModelsResponse(BaseModel):
    default_model: str
    models: list[ModelEntry]
    failed: list[dict[str, str]]
