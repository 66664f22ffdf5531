"""A model saved to a directory: the flavor's files plus ``dsops-model.json`` describing
them (flavor, what loading needs, signature). What a stage's ``model:`` out points at, and
what the registry stores."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsops.core.errors import UsageError

DESCRIPTOR = "dsops-model.json"
FORMAT = 1


@dataclass(frozen=True)
class ModelPackage:
    """A model directory read back: the descriptor's content and the directory."""

    directory: Path
    flavor: str
    meta: dict[str, Any]
    files: list[str]
    needs_trust: bool
    trust_reason: str | None
    signature: dict[str, Any] | None


def save_model(model: Any, path: str | os.PathLike[str], *, flavor: str | None = None,
               signature: Any = None, input_example: Any = None,
               code_ref: str | None = None) -> Path:
    """Write ``model`` to the directory ``path`` (replaced whole, atomically) with its
    descriptor; the signature is inferred from ``input_example`` when not given."""
    from dsops.registry.flavors import save_model as save_files

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        saved = save_files(model, staging, flavor=flavor, code_ref=code_ref)
        descriptor = {
            "format": FORMAT, "flavor": saved.flavor, "meta": saved.meta,
            "files": sorted(saved.files), "needs_trust": saved.needs_trust,
            "trust_reason": saved.trust_reason,
            "signature": _signature_dict(model, signature, input_example),
        }
        (staging / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2, sort_keys=True,
                                                     default=str))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_package(path: Path) -> ModelPackage:
    """Read a directory written by ``save_model``; anything else is a clear error."""
    descriptor = path / DESCRIPTOR
    if not path.is_dir() or not descriptor.is_file():
        raise UsageError(
            f"{path} is not a saved model: expected a directory with {DESCRIPTOR}",
            hint="save it with dsops.save_model(model, PATH) (or register it with "
                 "dsops.log_model(model, name=…))")
    try:
        data = json.loads(descriptor.read_text(encoding="utf-8"))
        package = ModelPackage(
            directory=path, flavor=str(data["flavor"]), meta=dict(data["meta"]),
            files=[str(f) for f in data["files"]], needs_trust=bool(data["needs_trust"]),
            trust_reason=data.get("trust_reason"), signature=data.get("signature"))
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{descriptor} is malformed ({exc}): save the model again") from None
    for name in package.files:
        if not (path / name).is_file():
            raise UsageError(f"{path}: file {name!r} listed in {DESCRIPTOR} is missing")
    return package


def _signature_dict(model: Any, signature: Any, input_example: Any) -> dict[str, Any] | None:
    from dsops.registry.signature import Signature, infer_signature

    if signature is None and input_example is None:
        return None
    if isinstance(signature, dict):
        return Signature.from_dict(signature).to_dict()
    if isinstance(signature, Signature):
        return signature.to_dict()
    if signature is not None:
        raise UsageError(f"signature must be a dsops Signature or a dict, not "
                         f"{type(signature).__name__}")
    outputs = None
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            outputs = predict(input_example)
        except Exception:  # the signature's output part is optional; inputs still count
            outputs = None
    return infer_signature(input_example, outputs).to_dict()
