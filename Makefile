# Convenience targets; the README's two commands need none of them.
PYTHON ?= python

.PHONY: test reproduce findings check-findings

test:            ## the test suite (what CI runs)
	$(PYTHON) -m pytest -q

reproduce:       ## run every study into runs/ and rewrite FINDINGS.md (about 19 h on 2 cores by the studies' headers, most of it seed_compatible, beta_vae_criterion and inertia_warm; rerun to resume)
	$(PYTHON) studies/reproduce.py

findings:        ## rewrite FINDINGS.md from the results already in runs/
	$(PYTHON) studies/reproduce.py --findings-only

check-findings:  ## rerun the studies in a temporary folder; fail if a finding no longer holds
	$(PYTHON) -m pytest -m slow tests/slow
