"""Workspace: the store, object store, clock and identity of one dsops project, opened once."""

from __future__ import annotations

import getpass
import os
import subprocess
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsops.config import ProjectConfig, load_config
from dsops.core.clock import Clock, SystemClock
from dsops.core.errors import Conflict, UsageError
from dsops.core.project import CONFIG_NAME, STATE_DIR, find_root

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dsops.core.crypto import Key
    from dsops.objects import ObjectStore
    from dsops.store import Store

__all__ = ["Workspace", "find_root", "resolve_identity"]


def resolve_identity(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Who is acting: ``DSOPS_USER``, else git's ``user.email``, else the OS user."""
    env = os.environ if env is None else env
    if env.get("DSOPS_USER"):
        return env["DSOPS_USER"]
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or getpass.getuser()


class Workspace:
    """A dsops project: its config, metadata store, object store, clock and acting identity.

    The store and object store open on first use, so commands that need neither stay fast.
    """

    def __init__(
        self, root: Path, config: ProjectConfig, *, clock: Clock | None = None,
        identity: str | None = None, store_url: str | None = None,
        objects_url: str | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.identity = identity or resolve_identity()
        self.state_dir = root / STATE_DIR
        self.store_url = (store_url or os.environ.get("DSOPS_STORE_URL") or config.store
                          or f"sqlite:///{self.state_dir / 'dsops.db'}")
        self.objects_url = (objects_url or os.environ.get("DSOPS_OBJECTS_URL") or config.objects
                            or None)

    @classmethod
    def open(cls, start: Path | None = None, **kwargs: Any) -> Workspace:
        """Find ``dsops.yaml`` upward from ``start`` (default: the working directory)."""
        start = start or Path.cwd()
        root = find_root(start)
        if root is None:
            raise UsageError(
                f"no {CONFIG_NAME} in {start} or any parent directory",
                hint="run 'dsops init' to start a project here",
            )
        return cls(root, load_config(root / CONFIG_NAME), **kwargs)

    @classmethod
    def init(cls, directory: Path, *, project: str | None = None, **kwargs: Any) -> Workspace:
        """Create ``dsops.yaml`` (commented), ``.dsops/`` and the store in ``directory``."""
        from dsops.config.template import render_template
        from dsops.core.refs import check_name

        directory = directory.resolve()
        config_path = directory / CONFIG_NAME
        if config_path.exists():
            raise Conflict(f"{config_path} already exists: this is already a dsops project")
        name = check_name(project or directory.name.lower().replace(" ", "-"), "project name")
        directory.mkdir(parents=True, exist_ok=True)
        config_path.write_text(render_template(name), encoding="utf-8")
        gitignore = directory / ".gitignore"
        lines = gitignore.read_text().splitlines() if gitignore.exists() else []
        if f"{STATE_DIR}/" not in lines and STATE_DIR not in lines:
            with gitignore.open("a", encoding="utf-8") as f:
                if lines and lines[-1] != "":
                    f.write("\n")
                f.write(f"# dsops local state: metadata store, object cache, stat cache\n"
                        f"{STATE_DIR}/\n")
        ws = cls(directory, load_config(config_path), **kwargs)
        ws.state_dir.mkdir(exist_ok=True)
        with ws.store.transaction() as session:
            ws.audit(session, "project.init", name, {"root": str(directory)})
        return ws

    @cached_property
    def store(self) -> Store:
        """The metadata store (migrated on open)."""
        from dsops.store import Store

        return Store(self.store_url)

    @cached_property
    def objects(self) -> ObjectStore:
        """The content-addressed object store."""
        from dsops.objects import open_object_store

        return open_object_store(self.objects_url, self.state_dir / "objects")

    def encryption_key(self, *, required_for: str | None = None) -> Key | None:
        """The data key from the environment (never from the store or the repository).

        ``required_for`` says what needs it ("reading credit@1"); without a key that is
        a clear error instead of None.
        """
        from dsops.core.crypto import load_key
        from dsops.core.errors import EncryptionError

        key = load_key()
        if key is None and required_for:
            raise EncryptionError(
                f"{required_for} needs the encryption key, and none is configured",
                hint="set DSOPS_ENCRYPTION_KEY (create one with 'dsops keys generate') or "
                     "DSOPS_ENCRYPTION_KEY_FILE",
            )
        return key

    def now(self) -> datetime:
        return self.clock.now()

    def audit(self, session: Session, action: str, target: str,
              details: dict[str, Any] | None = None) -> None:
        """Append an audit event for a mutation, inside the mutation's transaction."""
        from dsops.store.audit import append_event

        append_event(session, at=self.now(), actor=self.identity, action=action,
                     target=target, details=details)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
