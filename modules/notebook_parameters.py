"""Papermill parameters written as Python literals, never as code.

papermill writes a value it has no rule for (a tuple, a set) as `"` + str(value) + `"`
without escaping, so a tuple holding a string with a double quote ends that string and the
rest of it runs as code in the parameters cell (and the tuple arrives as a string). Here every
value is written as its `repr`, accepted only when `ast.literal_eval` reads it back as the
same value: tuples arrive as tuples, and nothing can become code.
"""

import ast
import math

from papermill.translators import PythonTranslator, papermill_translators


class LiteralTranslator(PythonTranslator):
    """PythonTranslator whose values are checked literals (floats keep papermill's nan/inf)."""

    @classmethod
    def translate(cls, val):
        if isinstance(val, float) and not math.isfinite(val):
            return cls.translate_float(val)
        text = repr(val)
        try:
            same = ast.literal_eval(text) == val and type(ast.literal_eval(text)) is type(val)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            same = False
        if not same:
            raise ValueError(f"notebook parameter {text[:80]} is not a plain Python literal")
        return text


def use_literal_parameters(kernel_name):
    """Make papermill write the parameters of notebooks run on `kernel_name` as literals."""
    papermill_translators.register(kernel_name, LiteralTranslator)
