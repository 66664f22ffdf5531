"""``dsops keys``: encryption keys for sensitive data (never stored by dsops)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Encryption keys for sensitive data.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (mode 0600).")] = None,
) -> None:
    """Create a new AES-256 key for DSOPS_ENCRYPTION_KEY or DSOPS_ENCRYPTION_KEY_FILE."""
    from dsops.core.crypto import generate_key
    from dsops.core.errors import Conflict

    key = generate_key()
    if out is None:
        print(key)
        return
    if out.exists():
        raise Conflict(f"{out} already exists; refusing to overwrite a key")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    print(f"wrote a new key to {out}; use it with DSOPS_ENCRYPTION_KEY_FILE={out}")
