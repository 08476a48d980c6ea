"""Prompt templates: ``"Summarise: {title}\\n\\n{body}"`` rendered column-wise with pyarrow.

Placeholders name columns and nothing else. Values are inserted as plain text: they are never
parsed, formatted or evaluated, so a value such as ``{secret}`` or ``__import__('os')`` stays literal.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..results.arrow_numpy import text_scalar


@dataclass(frozen=True)
class PromptTemplate:
    """A template split into literal text and column placeholders."""

    text: str
    literals: tuple[str, ...]  # len(columns) + 1 literal pieces around the placeholders
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "PromptTemplate":
        literals: list[str] = []
        columns: list[str] = []
        pending = ""
        try:
            parts = list(Formatter().parse(text))
        except ValueError as exc:
            raise InputError(
                f"invalid prompt template {text!r}: {exc} (write literal braces as {{{{ and }}}})"
            ) from None
        for literal, field, spec, conversion in parts:
            pending += literal
            if field is None:
                continue
            if not field or spec or conversion or any(c in field for c in ".[]"):
                raise InputError(
                    f"invalid placeholder {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                    f"in prompt template: use {{column_name}} only (no format specs, attributes or indexes)"
                )
            literals.append(pending)
            columns.append(field)
            pending = ""
        literals.append(pending)
        if not columns:
            raise InputError(f"prompt template {text!r} has no {{column}} placeholder")
        return cls(text, tuple(literals), tuple(columns))

    def render(self, texts: Mapping[str, pa.Array]) -> pa.Array:
        """Render one string per row from each placeholder column's text; a null value renders the row as null."""
        pieces: list[pa.Array | pa.Scalar] = []
        for literal, column in zip(self.literals, self.columns):
            if literal:
                pieces.append(text_scalar(literal))
            pieces.append(pc.cast(texts[column], pa.large_string()))
        if self.literals[-1]:
            pieces.append(text_scalar(self.literals[-1]))
        if len(pieces) == 1:
            return pieces[0]
        return pc.binary_join_element_wise(*pieces, text_scalar(""), null_handling="emit_null")
