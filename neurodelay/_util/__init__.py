"""The bottom layer: helpers every other layer may use, importing nothing of neurodelay but its errors.

``validators``  attrs validators and number tests (messages name field, constraint, value and fix)
``files``       atomic writes, folder locks, output errors said plainly
``timegrid``    times in ms to whole (or fractional) steps of dt
``bounds``      the bounds a study's values must keep (sizes, depths, memory)
``perf``        allocator tuning, bf16 autocast, fast-path switches
"""
