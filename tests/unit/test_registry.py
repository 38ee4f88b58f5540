"""The analysis registry lists its package once per process, so a running sweep is immune to files added later."""

from __future__ import annotations

import pkgutil

from neurodelay import registry


def test_available_lists_the_analysis_package_once(monkeypatch):
    first = registry.available()
    assert {"lag", "reversal", "occlusion", "decoding_latency"} <= set(first)
    listed = []
    real = pkgutil.iter_modules

    def listing(path):
        listed.append(path)
        return real(path)

    monkeypatch.setattr(registry.pkgutil, "iter_modules", listing)
    assert registry.available() == first and listed == []  # a new file on disk would not be imported now
    monkeypatch.setattr(registry, "_DISCOVERED", None)  # a fresh process lists the folder
    assert registry.available() == first and len(listed) == 1
