"""Gates: named checks over a model candidate, in the expression language of ``gates.expr``."""
