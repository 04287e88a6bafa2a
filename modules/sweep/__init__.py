"""Design-space sweeps on Optuna: which points to run (space.py), the study, its storage and
its workers (study.py), and what a finished study shows (results.py). The trial itself (train,
export, compile) is notebook 06's stage, modules/stages/design_space.py."""
