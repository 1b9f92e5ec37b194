"""The champion/challenger gate: whether a finished run's new model version (the challenger)
replaces the workflow's model on its own, or waits for a scientist or admin.

One rule for both kinds of run (:func:`decide`): the challenger is activated when its mean
hold-out loss — the Dirichlet–Multinomial mixture NLL of the volunteers' votes, per galaxy —
is at most ``(1 + ACTIVATION_MAX_LOSS_INCREASE)`` × the champion's on the *same* galaxies with
the *same* votes (the pipeline computes both on the challenger's hold-out). What differs by kind
is only who the champion is (:func:`champion_for`):

- an encoder run is compared with the active version, whatever its kind;
- a head refresh is compared with the encoder version it is built on (its anchor), not with the
  previous head. Heads retrain every few dozen votes on the same hold-out galaxies, whose votes
  hardly change between refreshes: comparing each with the last one that passed would keep the
  luckiest head on that hold-out and hold back every fresher one (a ratchet that stops the live
  queue). The anchor was itself gated or chosen by a person, so a head is never worse than
  that, and each refresh is judged afresh against the same reference.

No champion (the workflow's first model), a champion that predicts another tree, or fewer than
two hold-out galaxies both can score: nothing to compare, the challenger is activated (and the
reason recorded). Pure: no torch, no writes (``runs.finish_run`` records the decision).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .models import ModelVersion, TrainingRun
from .selectors import active_model_version

MIN_GALAXIES = 2


@dataclass(frozen=True)
class GateFigures:
    """Both models' mean hold-out loss on the same galaxies (``None`` when not computed)."""

    champion_id: int | None
    challenger_loss: float | None = None
    champion_loss: float | None = None
    n_galaxies: int = 0


@dataclass(frozen=True)
class GateDecision:
    activate: bool
    reason: str


def champion_for(run: TrainingRun) -> ModelVersion | None:
    """The version a run's model must not be worse than (see the module docstring)."""
    if run.kind == TrainingRun.Kind.HEAD:
        return run.init_model_version
    champion = active_model_version(workflow=run.workflow)
    return champion if champion is not None and champion.tree_hash == run.tree_hash else None


def decide(figures: GateFigures, *, margin: float | None = None) -> GateDecision:
    margin = settings.ACTIVATION_MAX_LOSS_INCREASE if margin is None else margin
    if figures.champion_id is None:
        return GateDecision(True, "no champion to compare with (first model of this tree)")
    if figures.n_galaxies < MIN_GALAXIES or figures.challenger_loss is None or figures.champion_loss is None:
        return GateDecision(True, f"only {figures.n_galaxies} hold-out galaxies both models score: nothing to compare")
    allowed = figures.champion_loss + margin * abs(figures.champion_loss)
    verdict = "not worse than" if figures.challenger_loss <= allowed else "worse than"
    return GateDecision(figures.challenger_loss <= allowed,
                        f"hold-out loss {figures.challenger_loss:.4f} {verdict} the champion's "
                        f"{figures.champion_loss:.4f} (+{margin:.1%} allowed) on {figures.n_galaxies} galaxies")
