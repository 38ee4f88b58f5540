"""``python -m findings`` (from studies/): write FINDINGS.md from runs/."""

from . import main

raise SystemExit(main())
