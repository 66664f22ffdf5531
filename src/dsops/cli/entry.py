"""Console entry point: runs the Typer app and turns DsopsError into a message + exit code.

``dsops status`` and a no-op ``dsops run`` are answered before Typer is imported: they
must take tens of milliseconds when nothing changed (see data/status.py and
pipelines/fastpath.py), and Typer alone costs ~110 ms to import, SQLAlchemy ~365 ms.
Whenever the fast path is unsure, the command goes through Typer and the full services.
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
        command = [a for a in args if a != "--debug"]
        if command[:1] == ["status"] and set(command[1:]) <= {"--json"}:
            from dsops.data.status import run_status_command

            sys.exit(run_status_command(json_output="--json" in command))
        if command[:1] == ["run"]:
            code = _cached_run(command[1:])
            if code is not None:
                sys.exit(code)
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


def _cached_run(options: list[str]) -> int | None:
    """``dsops run`` of every stage when the fingerprints show all of them cached; None
    when the options ask for more (stages, --force, --dry, Dask) or anything changed."""
    json_output = False
    rest = list(options)
    while rest:
        option = rest.pop(0)
        if option == "--json":
            json_output = True
        elif option in ("--jobs", "-j") and rest and rest[0].isdigit() and int(rest[0]) >= 1:
            rest.pop(0)
        elif option.startswith("--jobs=") and option[7:].isdigit() and int(option[7:]) >= 1:
            pass
        elif option == "--executor" and rest[:1] == ["local"]:
            rest.pop(0)
        elif option != "--executor=local":
            return None
    from pathlib import Path

    from dsops.core.project import find_root
    from dsops.pipelines.fastpath import cached_stages

    root = find_root(Path.cwd())
    stages = None if root is None else cached_stages(root)
    if stages is None:
        return None
    # The same output as the full path (cli/pipeline.py) for an all-cached run.
    if json_output:
        import json

        print(json.dumps({"stages": [
            {"stage": s.stage, "action": "cached", "why": ["up to date"], "duration_s": 0.0,
             "run_id": s.run_id, "exit_code": None, "error": None, "stderr_tail": [],
             "model": None}
            for s in stages], "dry": False}, indent=2))
        return 0
    print(_plain_table("dsops run", ["stage", "action", "why", "duration", "run id"],
                       [[s.stage, "cached", "up to date", "0.0 s", s.run_id or ""]
                        for s in stages]))
    print(f"0 ran, {len(stages)} cached")
    return 0


def _plain_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """A table laid out as the Rich tables of the other commands, without importing Rich."""
    utf = (sys.stdout.encoding or "").lower().replace("-", "") in ("utf8", "utf16", "utf32")
    head, rule, cross, cell = ("┃", "━", "╇", "│") if utf else ("|", "-", "+", "|")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: list[str], sep: str) -> str:
        return sep.join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([title, line(columns, head), cross.join(rule * (w + 2) for w in widths),
                      *(line(r, cell) for r in rows)])


if __name__ == "__main__":
    main()
