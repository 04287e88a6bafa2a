"""What a finished study shows: the trials table, the Pareto front (Optuna's best_trials:
feasible trials only), the accuracy cost of each bit-width step, the recommendation, plots."""

import itertools

import matplotlib.pyplot as plt
import pandas as pd
from optuna.trial import TrialState

from modules.sweep.space import label

RESOURCE_COLUMNS = ("LUT %", "FF %", "BRAM36 %", "DSP %")
BIT_COLUMNS = ("W", "A", "first", "last")
COLUMNS = (
    "label", "method", "W", "A", "first", "last", "width", "state", "metric", "drop_from_fp32_%",
    "fps", *RESOURCE_COLUMNS, "fits", "binding_resource", "wall_s", "reason", "folder",
)  # fmt: skip


def trial_row(trial):
    attrs = trial.user_attrs
    bits = attrs.get("bits", {})
    reason = attrs.get("error") or attrs.get("finn_error") or _system_reason(trial)
    return {
        "trial": trial.number,
        "label": attrs.get("label") or label(attrs.get("point", {})),
        "method": attrs.get("method", attrs.get("point", {}).get("DEPLOY_MODEL", "qat")),
        "W": bits.get("weight"),
        "A": bits.get("act"),
        "first": bits.get("first_weight"),
        "last": bits.get("last_weight"),
        "width": attrs.get("width"),
        "state": trial.state.name,
        "metric": attrs.get("metric"),
        "drop_from_fp32_%": attrs.get("drop_from_fp32_%"),
        "fps": attrs.get("fps"),
        **{name: attrs.get(name) for name in RESOURCE_COLUMNS},
        "fits": attrs.get("fits"),
        "binding_resource": attrs.get("binding_resource"),
        "wall_s": attrs.get("wall_s"),
        "reason": reason,
        "folder": attrs.get("folder"),
    }


def _system_reason(trial):
    if trial.state == TrialState.FAIL:
        return trial.system_attrs.get("fail_reason") or "stopped (killed or interrupted)"
    if trial.state == TrialState.RUNNING:
        return "running"
    return None


def trials_table(study):
    """One row per trial, every state (crashed and FINN-refused trials keep their reason)."""
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    table = pd.DataFrame(rows, columns=["trial", *COLUMNS])
    table[list(BIT_COLUMNS)] = table[list(BIT_COLUMNS)].astype("Int64")  # blank when failed
    return table.set_index("trial")


def pareto_numbers(study):
    """Trial numbers on the Pareto front of (metric, FPS at fit) among feasible trials."""
    return sorted(t.number for t in study.best_trials)


STEP_COLUMNS = (
    "from", "to", "width", "metric_from", "metric_to", "metric_cost", "fps_at_fit_from",
    "fps_at_fit_to", "fps_gain_x", "does_not_fit",
)  # fmt: skip


def bit_step_costs(table):
    """Each step down in (weight, activation) bits at the same width and first/last bits:
    the metric lost and the FPS at fit gained, from the finished trials. Only a design that
    fits has an FPS at fit (a trial that does not is at its target's FPS): a step with an end
    that does not fit has no FPS gain and names that end in `does_not_fit`."""
    done = table[(table["state"] == "COMPLETE") & table["metric"].notna()].copy()
    # the same bits by two methods is no step: the PTQ trial steps up, the QAT one on down
    done["is_qat"] = done["method"] == "qat"
    rows = []
    for _, group in done.groupby(["width", "first", "last"], dropna=False):
        ordered = group.sort_values(["W", "A", "is_qat"], ascending=[False, False, True])
        for (_, high), (_, low) in itertools.pairwise(ordered.iterrows()):
            if (high["W"], high["A"]) != (low["W"], low["A"]):
                rows.append(_step(high, low))
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS))


def _step(high, low):
    fps_high, fps_low = _fps_at_fit(high), _fps_at_fit(low)
    name_high, name_low = (f"W{row['W']}A{row['A']} {row['method']}" for row in (high, low))
    not_fitting = [name for name, fps in ((name_high, fps_high), (name_low, fps_low)) if not fps]
    return {
        "from": name_high,
        "to": name_low,
        "width": high["width"],
        "metric_from": high["metric"],
        "metric_to": low["metric"],
        "metric_cost": high["metric"] - low["metric"],
        "fps_at_fit_from": fps_high,
        "fps_at_fit_to": fps_low,
        "fps_gain_x": fps_low / fps_high if fps_high and fps_low else None,
        "does_not_fit": ", ".join(not_fitting) or None,
    }


def _fps_at_fit(row):
    """The trial's FPS when its design fits the part (and FINN built it), else None."""
    return float(row["fps"]) if row["fits"] == True and row["fps"] else None  # noqa: E712


def recommend(table, target_fps):
    """(trial number, why) of the most accurate trial that fits at `target_fps`; when none
    reaches it, the most accurate one that fits at all, saying so; (None, why) without one."""
    fitting = table[(table["state"] == "COMPLETE") & (table["fits"] == True)]  # noqa: E712
    if fitting.empty:
        return None, "no trial fits the part: lower the bit widths or the width"
    fast = fitting[fitting["fps"] >= target_fps]
    if not fast.empty:
        best = fast["metric"].idxmax()
        why = f"most accurate of {len(fast)} trial(s) that fit at TARGET_FPS = {target_fps:g}"
        return int(best), why
    best = fitting["metric"].idxmax()
    fps = fitting.loc[best, "fps"]
    why = (
        f"no trial fits at TARGET_FPS = {target_fps:g}: the most accurate fitting trial, "
        f"at {fps:.0f} FPS"
    )
    return int(best), why


def plot_pareto(table, front, metric_label, target_fps=None, path=None):
    """Metric against FPS at fit (log axis): fitting trials, the Pareto front joined, trials
    that do not fit (grey crosses, at the FPS of their design at TARGET_FPS) and those FINN
    could not build (red, at the left edge) apart; each point names its setting and the
    resource that binds it."""
    done = table[table["state"] == "COMPLETE"].copy()
    built = done["reason"].isna()
    edge = 0.5 * min([*done.loc[built, "fps"], target_fps or 1.0])
    done.loc[~built, "fps"] = edge
    groups = {
        "fits": (done[built & (done["fits"] == True)], "o", "tab:blue"),  # noqa: E712
        "does not fit": (done[built & (done["fits"] == False)], "x", "grey"),  # noqa: E712
        "FINN cannot build": (done[~built], "s", "tab:red"),
    }
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, (rows, marker, color) in groups.items():
        ax.scatter(rows["fps"], rows["metric"], marker=marker, color=color, label=name)
        for number, row in rows.iterrows():
            note = f"#{number} {row['label']}\n{row['binding_resource'] or ''}"
            ax.annotate(note, (row["fps"], row["metric"]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")  # fmt: skip
    pareto = done.loc[[n for n in front if n in done.index]].sort_values("fps")
    if not pareto.empty:
        ax.plot(pareto["fps"], pareto["metric"], "-", color="tab:green", label="Pareto front")
    if target_fps:
        ax.axvline(target_fps, linestyle=":", color="black", label="TARGET_FPS")
    ax.set_xscale("log")
    ax.set_xlabel("accelerator FPS at fit (estimate)")
    ax.set_ylabel(metric_label)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
