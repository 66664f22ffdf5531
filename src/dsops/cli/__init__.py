"""The ``dsops`` command line: one module per command group; parse → call a service → render."""
