"""Image sizes the study file leaves to the world: conv areas and presets take ``world.size``.

:func:`_fill_sizes` gives them the world's size while loading and remembers
where, so that an error about such a size is reported at ``$.world.size``
(:func:`_at_world_size`); :func:`_follow_world_size` lets them follow a
``world.size`` that an override or a sweep changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import attrs

from ..components import COMPONENTS
from ..presets import PRESETS
from .paths import _path_key
from .problems import _key_path, _text
from .spec import WORLDS
from ..worlds import MovingCircle

__all__: list[str] = []


def _world_size(raw: Mapping):
    """The image size of the raw study's world (given, or its kind's default); None if unknown."""
    world = raw.get("world")
    size = None
    if isinstance(world, Mapping):
        cls = WORLDS.get(_text(world.get("kind")))
        size = world.get("size", attrs.fields_dict(cls)["size"].default if cls else None)
    elif world is None:
        size = attrs.fields_dict(MovingCircle)["size"].default
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _image_sized(cls) -> bool:
    """Whether component class ``cls`` takes the world's image size as its ``size`` (``size_is_image``)."""
    return (cls is not None and getattr(cls, "size_is_image", False) is True
            and attrs.has(cls) and "size" in attrs.fields_dict(cls))


def _fill_sizes(raw: dict, extra_kinds: Mapping[str, type] | None = None) -> tuple[dict, dict[str, int]]:
    """Give conv areas and presets the world's image size unless the file sets one.

    ``extra_kinds``: component kinds besides the built-in ones (a Python
    study's own); those that set ``size_is_image`` take it too.

    Returns
    -------
    raw : dict
        The study with the sizes filled in.
    filled : dict of str -> int
        The paths filled (``$.circuit.size``, ``$.circuit.nodes.enc.size``)
        with the size given them, so that an error about one of them is
        reported at ``$.world.size``, the key the file wrote.
    """
    size = _world_size(raw)
    circuit = raw.get("circuit")
    if size is None or not isinstance(circuit, Mapping):
        return raw, {}
    circuit, filled = dict(circuit), {}
    kinds = {**COMPONENTS, **(extra_kinds or {})}
    if _text(circuit.get("preset")) in PRESETS:
        if "size" in inspect.signature(PRESETS[circuit["preset"]]).parameters and "size" not in circuit:
            circuit["size"] = size
            filled["$.circuit.size"] = size
    elif isinstance(circuit.get("nodes"), Mapping):
        nodes = {}
        for name, spec in circuit["nodes"].items():
            cls = kinds.get(_text(spec.get("kind"))) if isinstance(spec, Mapping) else None
            if _image_sized(cls) and "size" not in spec:
                spec = {**spec, "size": size}
                filled[f"$.circuit.nodes{_key_path(name)}.size"] = size
            nodes[name] = spec
        circuit["nodes"] = nodes
    raw["circuit"] = circuit
    return raw, filled


def _at_world_size(problems: list[tuple[str, str]], filled: Mapping[str, int], world_given: bool
                   ) -> list[tuple[str, str]]:
    """Problems at sizes filled from the world, moved to ``$.world.size`` (once per message).

    ``world_given``: whether the file gives ``world.size`` (else the world's default).
    """
    out, moved = [], {}
    for path, msg in problems:
        if path in filled:
            moved.setdefault(msg, []).append(path[2:])
        else:
            out.append((path, msg))
    if "$.world.size" in {p for p, _ in out}:
        return out  # the world's own check already reports its size
    for msg, paths in moved.items():
        size = next(filled[f"$.{p}"] for p in paths)
        given = "given" if world_given else "the default"
        out.append(("$.world.size", f"world.size ({given}: {size}) is also the image size of "
                                    f"{', '.join(paths)}, which the file leaves to the world: {msg}"))
    return out



def _follow_world_size(raw: dict, old_size, set_paths, extra_kinds: Mapping[str, type] | None = None) -> dict:
    """Let conv sizes equal to the old world size follow a new one (``raw`` is changed in place).

    A resolved study (a sweep's, a Python study's) gives every conv area
    its size explicitly, so ``_fill_sizes`` no longer tells a size the
    file gave from one taken from the world. When overrides change the
    world's size, the sizes equal to the old one are taken out (and filled
    again from the new world), unless an override sets them itself.

    ``extra_kinds``: a Python study's own component kinds (those that set
    ``size_is_image`` follow too).
    """
    new_size = _world_size(raw)
    circuit = raw.get("circuit")
    if new_size is None or old_size is None or new_size == old_size or not isinstance(circuit, dict):
        return raw
    given = [k for k in map(_path_key, set_paths) if k is not None]
    kinds = {**COMPONENTS, **(extra_kinds or {})}

    def free(*key) -> bool:
        return not any(key[:len(g)] == g for g in given)

    def same(v) -> bool:
        return type(v) is int and v == old_size

    if _text(circuit.get("preset")) in PRESETS:
        if same(circuit.get("size")) and free("circuit", "size"):
            del circuit["size"]
    elif isinstance(circuit.get("nodes"), dict):
        for name, spec in circuit["nodes"].items():
            cls = kinds.get(_text(spec.get("kind"))) if isinstance(spec, dict) else None
            if _image_sized(cls) and same(spec.get("size")) \
                    and free("circuit", "nodes", name, "size"):
                del spec["size"]
    return raw

