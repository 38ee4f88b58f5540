# Convenience targets; the README's two commands need none of them.
PYTHON ?= python

.PHONY: test reproduce findings check-findings

test:            ## the test suite (what CI runs)
	$(PYTHON) -m pytest -q

reproduce:       ## run every reproduction study into runs/ and rewrite FINDINGS.md (about 1 h 50 min on 2 cores: the studies' headers sum to 107 min)
	$(PYTHON) studies/reproduce.py

findings:        ## rewrite FINDINGS.md from the results already in runs/
	$(PYTHON) studies/reproduce.py --findings-only

check-findings:  ## rerun the studies in a temporary folder; fail if a finding no longer holds
	$(PYTHON) -m pytest -m slow tests/slow
