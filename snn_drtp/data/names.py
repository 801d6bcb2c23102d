"""Parameters written into a dataset's name: ``base:key=value,key=value`` (``randman:classes=5``,
``emulated-shd:channels=64``), shared by the datasets generated here."""

from __future__ import annotations


def name_parameters(name: str, fields: dict[str, type], example: str) -> dict[str, int | float]:
    """{key: value} of ``name``'s part after the first ':', each key one of ``fields`` and each value
    of its type (int or float); an error names the item, the keys and ``example`` otherwise."""
    _, _, rest = name.partition(":")
    values: dict[str, int | float] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise ValueError(
                f"dataset {name!r}: {item!r} is not key=value with a key among {', '.join(fields)}; e.g. {example}"
            )
        kind = fields[key]
        try:
            values[key] = kind(value)
        except ValueError:
            whole = "; write a whole number" if kind is int else ""
            raise ValueError(f"dataset {name!r}: {key} = {value!r} is not a number{whole}") from None
    return values
