"""The model registry: versions numbered per model, aliases with their history, trust
records for unsafe formats, and the link of every version to its run and datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsops.core.errors import Conflict, NotFound, PermissionDenied, UsageError
from dsops.core.hashing import hash_bytes, hash_file
from dsops.core.ids import new_id
from dsops.core.refs import Ref, check_name
from dsops.registry.models import (
    AliasChange,
    GateSummary,
    ModelDiff,
    ModelFile,
    ModelSummary,
    ModelVersionInfo,
    RegisterResult,
    ValueDelta,
)
from dsops.registry.package import read_package
from dsops.store.models import Dataset as DatasetRow
from dsops.store.models import (
    DatasetVersion,
    GateResult,
    LineageEdge,
    Model,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Run,
)
from dsops.workspace import Workspace

CHAMPION = "champion"
LATEST = "latest"


def model_node(name: str, version: int) -> str:
    """The lineage node of a model version."""
    return f"model:{name}@{version}"


class RegistryService:
    """Register, find, alias, trust and compare model versions."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # --- writing ---------------------------------------------------------------------

    def register(self, name: str, source: Path, *, run_id: str | None = None,
                 metrics: dict[str, float] | None = None,
                 info: dict[str, Any] | None = None) -> RegisterResult:
        """Store the model saved in ``source`` as the next version of ``name``.

        The same artifact registered again (same files, flavor and signature) is not a
        new version: the existing one is returned with ``created=False``.
        """
        check_name(name, "model name")
        package = read_package(source)
        files = {rel: {"digest": hash_file(package.directory / rel),
                       "size": (package.directory / rel).stat().st_size}
                 for rel in sorted({*package.files, "dsops-model.json"})}
        digest = hash_bytes(json.dumps(
            {"flavor": package.flavor, "files": {k: v["digest"] for k, v in files.items()}},
            sort_keys=True).encode())
        self.ws.objects.put_files([(package.directory / rel, meta["digest"])
                                   for rel, meta in files.items()])
        config = self.ws.config.models.get(name)
        card = {k: v for k, v in (config.model_dump() if config else {}).items() if v}
        card.update({k: v for k, v in (info or {}).items() if v is not None})
        meta = dict(package.meta)
        if package.trust_reason:
            meta["trust_reason"] = package.trust_reason
        with self.ws.store.transaction() as session:
            if run_id is not None and session.get(Run, run_id) is None:
                raise NotFound("run", run_id)
            model = session.execute(select(Model).where(Model.name == name)).scalar_one_or_none()
            if model is None:
                model = Model(id=new_id(), name=name, created_at=self.ws.now(),
                              created_by=self.ws.identity)
                session.add(model)
                session.flush()
            latest = session.execute(
                select(ModelVersion).where(ModelVersion.model_id == model.id)
                .order_by(ModelVersion.version.desc()).limit(1)).scalar_one_or_none()
            if latest is not None and latest.digest == digest:
                return RegisterResult(version=self._info(session, model, latest), created=False)
            number = (latest.version if latest else 0) + 1
            row = ModelVersion(
                id=new_id(), model_id=model.id, version=number, digest=digest,
                flavor=package.flavor, files=files, meta=meta, signature=package.signature,
                metrics={k: float(v) for k, v in (metrics or {}).items()}, info=card,
                run_id=run_id, needs_trust=package.needs_trust,
                created_at=self.ws.now(), created_by=self.ws.identity)
            session.add(row)
            if run_id is not None:
                session.merge(LineageEdge(source=f"run:{run_id}", target=model_node(name, number),
                                          created_at=self.ws.now()))
            self.ws.audit(session, "model.register", model_node(name, number),
                          {"digest": digest, "flavor": package.flavor, "run": run_id,
                           "needs_trust": package.needs_trust})
            session.flush()
            return RegisterResult(version=self._info(session, model, row), created=True)

    def set_alias(self, ref: str | Ref, alias: str, *, reason: str | None = None,
                  force: bool = False) -> AliasChange:
        """Point ``alias`` at ``ref``; the previous target stays in the alias history.

        ``champion`` only moves to a version whose latest gate passed, unless ``force``
        (which needs a ``reason`` and is marked in the audit log).
        """
        check_name(alias, "alias")
        if alias == LATEST or alias.isdigit():
            raise UsageError(f"{alias!r} cannot be an alias: it already means a version")
        if force and not reason:
            raise UsageError("--force needs --reason: say why the gate is bypassed")
        with self.ws.store.transaction() as session:
            model, row = self._resolve_in(session, _ref(ref))
            if alias == CHAMPION and not force:
                gate = self._latest_gate(session, row)
                if gate is None or not gate.passed:
                    verdict = "has no gate result" if gate is None else "failed its latest gate"
                    raise PermissionDenied(
                        f"{model.name}@{row.version} {verdict}: the champion alias moves only "
                        "to a version that passed its gate",
                        hint=f"run 'dsops gate {model.name}@{row.version}', or use --force "
                             "--reason '…' (recorded in the audit log)")
            current = session.get(ModelAlias, (model.id, alias))
            previous = current.version if current else None
            if previous == row.version:
                raise Conflict(f"{model.name}@{alias} already points at version {row.version}")
            now = self.ws.now()
            if current is None:
                session.add(ModelAlias(model_id=model.id, alias=alias, version=row.version,
                                       updated_at=now, updated_by=self.ws.identity))
            else:
                current.version, current.updated_at = row.version, now
                current.updated_by = self.ws.identity
            change = ModelAliasChange(
                id=new_id(), model_id=model.id, alias=alias, from_version=previous,
                to_version=row.version, at=now, actor=self.ws.identity, reason=reason,
                forced=force)
            session.add(change)
            self.ws.audit(session, "model.alias.forced" if force else "model.alias",
                          f"model:{model.name}@{alias}",
                          {"from": previous, "to": row.version, "reason": reason, "forced": force})
            return _change(model.name, change)

    def trust(self, ref: str | Ref, *, reason: str) -> ModelVersionInfo:
        """Record that the acting identity vouches for an artifact in an unsafe format."""
        if not reason.strip():
            raise UsageError("trust needs a reason: say where the model came from")
        with self.ws.store.transaction() as session:
            model, row = self._resolve_in(session, _ref(ref))
            if not row.needs_trust:
                raise Conflict(f"{model.name}@{row.version} is in a safe format: nothing to trust")
            row.trusted_by, row.trusted_at = self.ws.identity, self.ws.now()
            self.ws.audit(session, "model.trust", model_node(model.name, row.version),
                          {"reason": reason, "digest": row.digest})
            session.flush()
            return self._info(session, model, row)

    # --- reading ---------------------------------------------------------------------

    def show(self, ref: str | Ref) -> ModelVersionInfo:
        """One version with its metrics, params, lineage, aliases, gate and flags."""
        with self.ws.store.read() as session:
            model, row = self._resolve_in(session, _ref(ref))
            return self._info(session, model, row)

    def versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of a model, newest first."""
        with self.ws.store.read() as session:
            model = self._model(session, name)
            rows = session.execute(select(ModelVersion).where(ModelVersion.model_id == model.id)
                                   .order_by(ModelVersion.version.desc())).scalars().all()
            return [self._info(session, model, row) for row in rows]

    def list(self) -> list[ModelSummary]:
        """Every model with its latest version, aliases and flags."""
        with self.ws.store.read() as session:
            # Counts and latest numbers in one query; rows only of the versions shown (the
            # latest and the aliased), not of every version of every model.
            counts = {model_id: (count, latest) for model_id, count, latest in session.execute(
                select(ModelVersion.model_id, func.count(), func.max(ModelVersion.version))
                .group_by(ModelVersion.model_id))}
            aliases: dict[str, dict[str, int]] = {}
            for model_id, alias, version in session.execute(
                    select(ModelAlias.model_id, ModelAlias.alias, ModelAlias.version)
                    .order_by(ModelAlias.alias)):
                aliases.setdefault(model_id, {})[alias] = version
            out = []
            for model in session.execute(select(Model).order_by(Model.name)).scalars():
                if model.id not in counts:
                    continue
                count, latest = counts[model.id]
                named = aliases.get(model.id, {})
                rows = {row.version: row for row in session.execute(
                    select(ModelVersion).where(ModelVersion.model_id == model.id,
                                               ModelVersion.version.in_({latest, *named.values()}))
                ).scalars()}
                flags = sorted({flag for row in rows.values()
                                for flag in self._flags(session, model, row)})
                out.append(ModelSummary(
                    name=model.name, latest=latest, versions=count, aliases=named,
                    flavor=rows[latest].flavor, updated_at=rows[latest].created_at, flags=flags))
            return out

    def history(self, name: str) -> list[AliasChange]:
        """Every alias move of a model, oldest first."""
        with self.ws.store.read() as session:
            model = self._model(session, name)
            rows = session.execute(select(ModelAliasChange)
                                   .where(ModelAliasChange.model_id == model.id)
                                   .order_by(ModelAliasChange.id)).scalars().all()
            return [_change(model.name, row) for row in rows]

    def diff(self, old: str | Ref, new: str | Ref) -> ModelDiff:
        """Flavor, metrics, params, input columns and datasets of two versions."""
        a, b = self.show(old), self.show(new)
        return ModelDiff(
            old=a.ref, new=b.ref, flavor=_delta(a.flavor, b.flavor),
            metrics=_deltas(a.metrics, b.metrics), params=_deltas(a.params, b.params),
            inputs=_deltas(_columns(a.signature), _columns(b.signature)),
            datasets=_delta(a.datasets, b.datasets))

    def resolve(self, ref: str | Ref) -> ModelVersion:
        """The stored row of a reference (``name``, ``name@N``, ``name@alias``)."""
        with self.ws.store.read() as session:
            return self._resolve_in(session, _ref(ref))[1]

    def alias_target(self, name: str, alias: str) -> int | None:
        """The version an alias points at now, or None."""
        with self.ws.store.read() as session:
            model = self._model(session, name)
            row = session.get(ModelAlias, (model.id, alias))
            return row.version if row else None

    # --- internals -------------------------------------------------------------------

    def _model(self, session: Session, name: str) -> Model:
        model = session.execute(select(Model).where(Model.name == name)).scalar_one_or_none()
        if model is None:
            known = session.execute(select(Model.name)).scalars().all()
            raise NotFound("model", name, known=known,
                           hint=None if known else "register one with dsops.log_model(model, "
                                                   "name=…) or a stage's 'registers:'")
        return model

    def _resolve_in(self, session: Session, ref: Ref) -> tuple[Model, ModelVersion]:
        model = self._model(session, ref.name)
        number = ref.version
        if ref.alias is not None and ref.alias != LATEST:
            alias = session.get(ModelAlias, (model.id, ref.alias))
            if alias is None:
                known = session.execute(select(ModelAlias.alias)
                                        .where(ModelAlias.model_id == model.id)).scalars().all()
                raise NotFound(f"alias of {model.name}", ref.alias, known=known)
            number = alias.version
        query = select(ModelVersion).where(ModelVersion.model_id == model.id)
        if number is None:
            query = query.order_by(ModelVersion.version.desc()).limit(1)
        else:
            query = query.where(ModelVersion.version == number)
        row = session.execute(query).scalar_one_or_none()
        if row is None:
            latest = session.execute(select(func.max(ModelVersion.version))
                                     .where(ModelVersion.model_id == model.id)).scalar()
            raise NotFound(f"version of {model.name}", str(number),
                           hint=f"versions are 1 to {latest}" if latest else "it has none yet")
        return model, row

    def _aliases(self, session: Session, model: Model) -> dict[str, int]:
        rows = session.execute(select(ModelAlias.alias, ModelAlias.version)
                               .where(ModelAlias.model_id == model.id)
                               .order_by(ModelAlias.alias)).all()
        return {alias: version for alias, version in rows}

    def _latest_gate(self, session: Session, row: ModelVersion) -> GateResult | None:
        return session.execute(select(GateResult).where(GateResult.model_version_id == row.id)
                               .order_by(GateResult.id.desc()).limit(1)).scalar_one_or_none()

    def _datasets(self, session: Session, name: str, version: int) -> list[str]:
        """Dataset versions upstream of a model version, through runs and files."""
        seen, frontier, found = set(), [model_node(name, version)], set()
        while frontier:
            sources = session.execute(select(LineageEdge.source)
                                      .where(LineageEdge.target.in_(frontier))).scalars().all()
            frontier = []
            for source in sources:
                if source in seen:
                    continue
                seen.add(source)
                if source.startswith("data:"):
                    found.add(source)
                elif not source.startswith("model:"):
                    frontier.append(source)
        return sorted(found)

    def _flags(self, session: Session, model: Model, row: ModelVersion,
               datasets: list[str] | None = None) -> list[str]:
        flags = []
        for node in datasets if datasets is not None else self._datasets(
                session, model.name, row.version):
            ref = Ref.parse(node)
            revoked = session.execute(
                select(DatasetVersion.revoked_at).join(DatasetRow)
                .where(DatasetRow.name == ref.name, DatasetVersion.version == ref.version)
            ).scalar_one_or_none()
            if revoked is not None:
                flags.append(f"trained on revoked {ref}")
        if row.needs_trust and row.trusted_by is None:
            flags.append("untrusted format")
        return flags

    def _info(self, session: Session, model: Model, row: ModelVersion) -> ModelVersionInfo:
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        commit = None
        if row.run_id:
            from dsops.store.models import RunLatestMetric, RunParam

            params = dict(session.execute(select(RunParam.key, RunParam.value)
                                          .where(RunParam.run_id == row.run_id)).all())
            metrics = dict(session.execute(select(RunLatestMetric.key, RunLatestMetric.value)
                                           .where(RunLatestMetric.run_id == row.run_id)).all())
            commit = session.execute(select(Run.git_commit)
                                     .where(Run.id == row.run_id)).scalar_one_or_none()
        metrics.update(row.metrics)
        datasets = self._datasets(session, model.name, row.version)
        gate = self._latest_gate(session, row)
        return ModelVersionInfo(
            name=model.name, version=row.version, ref=f"{model.name}@{row.version}",
            digest=row.digest, flavor=row.flavor,
            files=[ModelFile(path=p, **m) for p, m in sorted(row.files.items())],
            size=sum(m["size"] for m in row.files.values()), signature=row.signature,
            metrics=metrics, params=params, info=row.info, run_id=row.run_id,
            git_commit=commit, datasets=datasets,
            aliases=[a for a, v in self._aliases(session, model).items() if v == row.version],
            needs_trust=row.needs_trust, trust_reason=row.meta.get("trust_reason"),
            trusted_by=row.trusted_by, trusted_at=row.trusted_at,
            created_at=row.created_at, created_by=row.created_by,
            gate=None if gate is None else GateSummary(
                id=gate.id, passed=gate.passed, at=gate.at,
                failed=[c["check"] for c in gate.checks if not c.get("passed")]),
            flags=self._flags(session, model, row, datasets))


def _ref(ref: str | Ref) -> Ref:
    return ref if isinstance(ref, Ref) else Ref.parse(ref, "model reference")


def _change(name: str, row: ModelAliasChange) -> AliasChange:
    return AliasChange(model=name, alias=row.alias, from_version=row.from_version,
                       to_version=row.to_version, at=row.at, actor=row.actor,
                       reason=row.reason, forced=row.forced)


def _delta(old: Any, new: Any) -> ValueDelta:
    return ValueDelta(old=old, new=new, changed=old != new)


def _deltas(old: dict[str, Any], new: dict[str, Any]) -> dict[str, ValueDelta]:
    return {key: _delta(old.get(key), new.get(key)) for key in sorted({*old, *new})}


def _columns(signature: dict[str, Any] | None) -> dict[str, Any]:
    """Input column → type of a stored signature (empty for tensor signatures)."""
    return {c["name"]: c.get("type") for c in input_columns(signature)}


def input_columns(signature: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The input columns of a stored signature: ``[{"name", "type", …}]``."""
    inputs = (signature or {}).get("inputs") or {}
    if isinstance(inputs, dict) and inputs.get("kind") == "columns":
        return [c for c in inputs.get("columns", []) if isinstance(c, dict) and "name" in c]
    return []
