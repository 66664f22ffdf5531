"""Console entry point: runs the Typer app and turns DsopsError into a message + exit code.

``dsops status`` is dispatched before Typer is imported: it must answer in tens of
milliseconds on a no-op (see data/status.py), and Typer alone costs ~110 ms to import.
Help is rendered plainly: Typer's Rich help costs ~250 ms more per call (measured 0.40 s
vs 0.15 s for ``dsops --help``); ``TYPER_USE_RICH=1`` brings it back.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TYPER_USE_RICH", "0")


def main(argv: list[str] | None = None) -> None:
    """Run ``dsops`` with ``argv`` (default: the process arguments)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        if args[:1] == ["status"] and set(args[1:]) <= {"--json", "--debug"}:
            from dsops.data.status import run_status_command

            sys.exit(run_status_command(json_output="--json" in args))
        from dsops.cli.app import app

        app(args=args, prog_name="dsops")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        from dsops.core.errors import DsopsError

        if not isinstance(exc, DsopsError):
            raise
        if debug:
            import traceback

            traceback.print_exc()
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
