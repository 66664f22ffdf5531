"""DatasetService: add, list, show, diff, check out and revoke dataset versions."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsops.config.models import DatasetConfig
from dsops.core.clock import as_utc
from dsops.core.errors import Conflict, NotFound, UsageError, ValidationFailed
from dsops.core.hashing import hash_file
from dsops.core.ids import new_id
from dsops.core.progress import NoProgress, Progress
from dsops.core.refs import Ref, check_name
from dsops.data.content import DirectoryContent, FileContent
from dsops.data.manifest import (
    Location,
    ManifestEntry,
    decode_stored,
)
from dsops.data.models import (
    AddResult,
    DatasetSummary,
    DatasetVersionInfo,
    DiffResult,
    PiiFinding,
    ValueChange,
)
from dsops.data.status import StatCache
from dsops.store.models import Dataset, DatasetVersion
from dsops.workspace import Workspace

if TYPE_CHECKING:
    import pyarrow as pa

    from dsops.core.crypto import Key


class DatasetService:
    """The operations on datasets a user performs (CLI, SDK and API call these)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    # --- adding ---------------------------------------------------------------------

    def add(
        self, path: Path, name: str, *, description: str | None = None,
        owner: str | None = None, license: str | None = None, consent: str | None = None,
        retention_until: date | None = None, allow_invalid: bool = False,
        progress: Progress | None = None,
    ) -> AddResult:
        """Version the file or directory at ``path`` as dataset ``name``.

        Validation, profiling and the PII scan run before anything is stored; blobs are
        uploaded before the version row is committed, so a killed process leaves at most
        unreferenced blobs, never a version without its content.
        """
        progress = progress or NoProgress()
        check_name(name, "dataset name")
        path = Path(path)
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
        declared = self.ws.config.datasets.get(name, DatasetConfig())
        cache = StatCache(self.ws.state_dir)
        try:
            if path.is_dir():
                content = DirectoryContent.scan(path, cache, progress)
            else:
                content = FileContent.scan(path, cache)
            cache.flush()
        finally:
            cache.close()

        latest = self._latest(name)
        if latest is not None and latest.digest == content.digest:
            return AddResult(created=False, version=self._info(name, latest))

        checks = content.inspect(declared)
        report = checks.get("validation")
        valid = report is None or report["passed"]
        if not valid and not allow_invalid:
            raise ValidationFailed(
                f"{path} fails the expectations of dataset {name!r}: nothing was stored",
                report=report,
                hint="fix the data, or record it flagged as invalid with --allow-invalid",
            )
        pii = checks.get("pii", [])
        sensitive = bool(pii) or bool(declared.sensitive_columns)
        key = (self.ws.encryption_key(required_for=f"{path} holds sensitive data: storing it")
               if sensitive else None)
        reuse = {}
        if latest is not None and latest.kind == "directory" and \
                latest.key_id == (key.id if key else None):
            reuse = self._stored_manifest(self._info(name, latest))[1]
        manifest = content.upload(self.ws, key, progress, reuse)

        meta = {
            "description": description or declared.description,
            "owner": owner or declared.owner,
            "license": license or declared.license,
            "consent": consent or declared.consent,
            "retention_until": retention_until or declared.retention_until,
        }
        now = self.ws.now()
        with self.ws.store.transaction() as session:
            dataset = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
            if dataset is None:
                dataset = Dataset(id=new_id(), name=name, created_at=now,
                                  created_by=self.ws.identity)
                session.add(dataset)
                session.flush()
            last = self._latest_row(session, dataset.id)
            if last is not None and last.digest == content.digest:
                # Another process added the same content meanwhile: still one version.
                return AddResult(created=False, version=self._info(name, last))
            number = (last.version if last else 0) + 1
            row = DatasetVersion(
                id=new_id(), dataset_id=dataset.id, version=number, digest=content.digest,
                manifest=manifest, kind=content.kind, format=content.format, source_name=path.name,
                size=content.size, file_count=content.file_count,
                row_count=checks.get("row_count"), created_at=now, created_by=self.ws.identity,
                sensitive=sensitive, key_id=key.id if key else None, valid=valid,
                validation=report, data_schema=checks.get("schema"),
                profile=checks.get("profile"), pii=pii or None, **meta,
            )
            session.add(row)
            self.ws.audit(session, "dataset.add", f"{name}@{number}", {
                "digest": content.digest, "size": content.size, "files": content.file_count,
                "valid": valid, "sensitive": sensitive,
                "pii": {f"{f.get('column') or f.get('file')}:{f['kind']}": f["count"]
                        for f in pii},
            })
        return AddResult(created=True, version=self._info(name, row))

    # --- reading --------------------------------------------------------------------

    def list(self) -> list[DatasetSummary]:
        """Every dataset with its latest version."""
        with self.ws.store.read() as session:
            counts = dict(session.execute(
                select(DatasetVersion.dataset_id, func.count()).group_by(DatasetVersion.dataset_id)
            ).all())
            out = []
            for dataset in session.execute(select(Dataset).order_by(Dataset.name)).scalars():
                latest = self._latest_row(session, dataset.id)
                if latest is None:
                    continue
                info = self._info(dataset.name, latest)
                out.append(DatasetSummary(
                    name=dataset.name, versions=counts.get(dataset.id, 0), latest=latest.version,
                    latest_created_at=info.created_at, size=latest.size,
                    row_count=latest.row_count, flags=info.flags))
        return out

    def versions(self, name: str) -> list[DatasetVersionInfo]:
        """All versions of a dataset, oldest first."""
        with self.ws.store.read() as session:
            dataset = self._dataset(session, name)
            rows = session.execute(
                select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                .order_by(DatasetVersion.version)
            ).scalars().all()
        return [self._info(name, row) for row in rows]

    def show(self, ref: str | Ref) -> DatasetVersionInfo:
        """One version with its schema, profile, validation report and PII findings."""
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref, "dataset reference")
        return self._info(ref.name, self._resolve(ref))

    def latest_digests(self, names: list[str]) -> dict[str, tuple[int, str]]:
        """Latest (version, digest) per dataset name (for ``status`` on a server store)."""
        out = {}
        for name in names:
            row = self._latest(name)
            if row is not None:
                out[name] = (row.version, row.digest)
        return out

    def diff(self, old: str, new: str) -> DiffResult:
        """Compare two versions: content, row counts, schema and per-column profiles."""
        from dsops.data.profile import diff_profiles

        a, b = self.show(old), self.show(new)
        result = DiffResult(
            old=a.ref, new=b.ref, same_content=a.digest == b.digest,
            size=ValueChange(old=a.size, new=b.size, delta=b.size - a.size),
        )
        if a.row_count is not None or b.row_count is not None:
            delta = (b.row_count - a.row_count
                     if a.row_count is not None and b.row_count is not None else None)
            result.row_count = ValueChange(old=a.row_count, new=b.row_count, delta=delta)
        if a.profile and b.profile and a.data_schema and b.data_schema:
            d = diff_profiles(a.profile, b.profile, a.data_schema, b.data_schema)
            result.added_columns = d["added_columns"]
            result.removed_columns = d["removed_columns"]
            result.type_changes = d["type_changes"]
            result.columns = d["columns"]
        if a.kind == "directory" and b.kind == "directory":
            fa = {e.path: e.digest for e in self.manifest(a.ref)}
            fb = {e.path: e.digest for e in self.manifest(b.ref)}
            result.added_files = sorted(fb.keys() - fa.keys())
            result.removed_files = sorted(fa.keys() - fb.keys())
            result.changed_files = sorted(p for p in fa.keys() & fb.keys() if fa[p] != fb[p])
        return result

    def manifest(self, ref: str | Ref) -> list[ManifestEntry]:
        """The files of a directory version."""
        return self._stored_manifest(self.show(ref))[0]

    def _stored_manifest(self, info: DatasetVersionInfo
                         ) -> tuple[list[ManifestEntry], dict[str, Location]]:
        if info.kind != "directory":
            raise UsageError(f"{info.ref} is a single file, not a directory dataset")
        return decode_stored(self.ws.objects.read_bytes(
            info.manifest or info.digest, key=self._key_for(info), encrypted=info.encrypted))

    def read_table(self, ref: str | Ref) -> pa.Table:
        """A tabular version as an Arrow table (decrypted in memory when sensitive)."""
        from dsops.data.tabular import read_table

        info = self.show(ref)
        if info.kind != "file" or info.format not in ("csv", "parquet", "jsonl"):
            raise UsageError(f"{info.ref} is not tabular (format: {info.format}); "
                             "use checkout or Dataset.path() for its files")
        if info.encrypted:
            data = self.ws.objects.read_bytes(info.digest, key=self._key_for(info), encrypted=True)
            return read_table(io.BytesIO(data), info.format, name=info.ref)
        return read_table(self.local_file(info), info.format, name=info.ref)

    def local_file(self, info: DatasetVersionInfo) -> Path:
        """A local path holding a plain version's single file (no copy when possible)."""
        if info.encrypted:
            raise UsageError(
                f"{info.ref} is sensitive and stored encrypted: it has no plaintext path",
                hint="read it with Dataset(...).to_pandas() / to_arrow(), or 'dsops data "
                     "checkout' it to a place you control")
        path = self.ws.objects.readable_path(info.digest)
        if path is not None and path.exists():
            return path
        cached = self.ws.state_dir / "cache" / info.digest
        if not cached.exists():
            self.ws.objects.get_file(info.digest, cached)
        return cached

    # --- writing out and revoking ---------------------------------------------------

    def checkout(self, ref: str | Ref, dest: Path | None = None, *, force: bool = False,
                 progress: Progress | None = None) -> Path:
        """Materialise a version at ``dest`` (default: its declared path), atomically."""
        progress = progress or NoProgress()
        info = self.show(ref)
        if dest is None:
            declared = self.ws.config.datasets.get(info.name)
            dest = self.ws.root / declared.path if declared and declared.path else \
                Path.cwd() / info.source_name
        key = self._key_for(info)
        if info.kind == "file":
            if dest.is_dir():
                dest = dest / info.source_name
            if dest.exists() and not force and not self._is_known_content(info.name, dest):
                raise Conflict(f"{dest} exists and holds content that no version of "
                               f"{info.name!r} has: checking out would lose it",
                               hint="add it as a new version first, or pass --force")
            self.ws.objects.get_file(info.digest, dest, key=key, encrypted=info.encrypted)
            return dest
        entries, locations = self._stored_manifest(info)
        if dest.exists() and not dest.is_dir():
            raise Conflict(f"{dest} is a file; {info.ref} is a directory dataset")
        progress.start(f"checkout {info.ref}", len(entries))
        packs: dict[str, list[tuple[int, int, str, Path]]] = {}
        loose = []
        for e in entries:
            where = locations.get(e.digest, Location())
            if where.pack is None:
                loose.append((e.digest, dest / e.path))
            else:
                packs.setdefault(where.pack, []).append((where.offset, e.size, e.digest,
                                                         dest / e.path))
        for pack, packed in packs.items():
            self.ws.objects.get_packed(pack, packed, key=key, encrypted=info.encrypted)
            progress.advance(len(packed))
        self.ws.objects.get_files(loose, key=key, encrypted=info.encrypted,
                                  progress=progress.advance)
        return dest

    def revoke(self, ref: str | Ref, *, reason: str) -> DatasetVersionInfo:
        """Mark a version revoked (consent withdrawn, licence ended, bad data)."""
        if not reason or not reason.strip():
            raise UsageError("revoking needs a reason (--reason)")
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref, "dataset reference")
        with self.ws.store.transaction() as session:
            row = self._resolve_in(session, ref)
            if row.revoked_at is not None:
                raise Conflict(f"{ref.name}@{row.version} was already revoked on "
                               f"{row.revoked_at:%Y-%m-%d} by {row.revoked_by}: {row.revoke_reason}")
            row.revoked_at, row.revoked_by, row.revoke_reason = (
                self.ws.now(), self.ws.identity, reason.strip())
            self.ws.audit(session, "dataset.revoke", f"{ref.name}@{row.version}",
                          {"reason": reason.strip()})
        return self._info(ref.name, row)

    # --- internals ------------------------------------------------------------------

    def _key_for(self, info: DatasetVersionInfo) -> Key | None:
        return (self.ws.encryption_key(required_for=f"{info.ref} is encrypted: reading it")
                if info.encrypted else None)

    def _is_known_content(self, name: str, path: Path) -> bool:
        digest = hash_file(path)
        with self.ws.store.read() as session:
            dataset = self._dataset(session, name)
            return session.execute(
                select(func.count()).select_from(DatasetVersion)
                .where(DatasetVersion.dataset_id == dataset.id, DatasetVersion.digest == digest)
            ).scalar_one() > 0

    def _dataset(self, session: Session, name: str) -> Dataset:
        dataset = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if dataset is None:
            known = session.execute(select(Dataset.name)).scalars().all()
            raise NotFound("dataset", name, known=known,
                           hint=None if known else "add one with 'dsops data add PATH --name NAME'")
        return dataset

    def _latest_row(self, session: Session, dataset_id: str) -> DatasetVersion | None:
        return session.execute(
            select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.version.desc()).limit(1)
        ).scalar_one_or_none()

    def _latest(self, name: str) -> DatasetVersion | None:
        with self.ws.store.read() as session:
            dataset = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
            return None if dataset is None else self._latest_row(session, dataset.id)

    def _resolve(self, ref: Ref) -> DatasetVersion:
        with self.ws.store.read() as session:
            return self._resolve_in(session, ref)

    def _resolve_in(self, session: Session, ref: Ref) -> DatasetVersion:
        if ref.alias is not None:
            raise UsageError(f"datasets have numbered versions, not aliases: use "
                             f"{ref.name}@N or {ref.name} (latest)")
        dataset = self._dataset(session, ref.name)
        if ref.version is None:
            row = self._latest_row(session, dataset.id)
            if row is None:
                raise NotFound("dataset", ref.name)
            return row
        row = session.execute(select(DatasetVersion).where(
            DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == ref.version
        )).scalar_one_or_none()
        if row is None:
            last = self._latest_row(session, dataset.id)
            raise NotFound("version", str(ref), hint=f"{ref.name} has versions 1 to "
                           f"{last.version if last else 0}")
        return row

    def _info(self, name: str, row: DatasetVersion) -> DatasetVersionInfo:
        return DatasetVersionInfo(
            name=name, version=row.version, ref=f"{name}@{row.version}", digest=row.digest,
            manifest=row.manifest, kind=row.kind, format=row.format,
            source_name=row.source_name, size=row.size,
            file_count=row.file_count, row_count=row.row_count,
            created_at=as_utc(row.created_at), created_by=row.created_by,
            description=row.description, owner=row.owner, license=row.license,
            consent=row.consent, retention_until=row.retention_until,
            sensitive=row.sensitive, encrypted=row.key_id is not None, valid=row.valid,
            revoked=row.revoked_at is not None,
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
            revoked_by=row.revoked_by, revoke_reason=row.revoke_reason,
            validation=row.validation, data_schema=row.data_schema, profile=row.profile,
            pii=[PiiFinding(**f) for f in row.pii or []],
        )

