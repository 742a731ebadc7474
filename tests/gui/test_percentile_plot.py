"""The P(known) plot also draws each target's unknown percentile and the unknown references' 25–75 band."""

from __future__ import annotations

from types import SimpleNamespace

from unlearn_studio.engine.events import InitialState, StepProgress, TargetState
from unlearn_studio.gui.plots import LivePlots


def _state(p_known: float, percentile: float) -> TargetState:
    return TargetState(p_known, 0.0, percentile, (0.0, 0.0), (1.0,), (0.0,))


def test_the_percentile_curve_follows_the_steps_inside_its_band(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    refs = SimpleNamespace(known_points=[[1.0, 0.0]], unknown_points=[[-1.0, 0.0]], known_names=["Paris"],
                           unknown_names=["Port Aldermere"], top_known_latents=[3], top_unknown_latents=[5],
                           targets=["Eiffel Tower"])
    plots.start_run(refs)
    plots.add_initial(InitialState({"Eiffel Tower": _state(0.9, 98.0)}))
    plots.add_step(StepProgress(1, 2, {"total": 1.0}, {"Eiffel Tower": _state(0.2, 60.0)}, 0.0, 1.0))
    plots.repaint_now()
    xs, ys = plots.percentile_curves["Eiffel Tower"].getData()
    assert list(xs) == [0.0, 1.0] and list(ys) == [0.98, 0.60]
    assert plots.unknown_band.getRegion() == (0.25, 0.75)
