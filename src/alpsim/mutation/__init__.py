"""A small mutation tool for the contracts and the mutation study (`make mutants`).

- `operators`: the mutation operators (chosen from Certora gambit's list), each rewriting one line.
- `catalog`: the study's single-line mutants of the shipped contracts; makes a mutant's copy.
- `study`: runs `alpsim fuzz` and the project's suite on each mutant; writes the results.
"""
