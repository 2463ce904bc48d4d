"""The adaptive LR search: which runs of a sweep to train next, given the results so far.

    plan = plan_runs(spec, outcomes)      # outcomes: {run_key: RunOutcome} of the stored runs
    plan.add                              # RunConfigs to queue now (a subset of spec.expand())

Why it works (TP5, Yang et al., 2022, Section 4 / Figure 1): the loss-vs-log2(LR) curve moves
smoothly with width (under µP its optimum stays put, under SP it drifts steadily), so the
narrow widths say where the optimum of a wide width lies. The wide widths, where nearly all of
a sweep's compute goes, then need only a few grid points to confirm or refute it.

The rule, per *group* (one parametrization x one `hparam_grid` combination x one depth of a
depth ladder; groups never share evidence, so SP and µP are searched separately):

1. Widths are processed narrow to wide. The narrowest `search.full_widths` widths train the
   whole grid. A wider width starts only when every run of the previous width has ended.
2. A wider width trains `search.bracket` consecutive grid points (all seeds, in parallel)
   centred on the *predicted* optimum, clipped to the grid. The prediction is the optimum of
   the latest finished width moved by the drift measured so far: a least-squares line of
   optimum (log2 LR) against log2(width) through every finished width, read at the new width
   (one finished width: its optimum as it is). Extrapolating the drift puts SP's bracket where
   SP's optimum has moved to instead of one bracket-width behind it; under µP the slope is
   about 0 and the prediction is the latest optimum. The nearest grid point is the centre.
3. While the best seed-mean point is on an edge of the trained points, the next grid point
   beyond that edge is trained, until the best point is interior (both neighbours trained,
   so `experiments.analysis.curves.curve_optimum` refines it exactly as for a grid sweep) or
   it is the grid's own edge (then a warning, as for a grid sweep).
4. The trained points also span the *proxy's* optimum x0 (the narrowest width's, the LR
   µTransfer would copy): while x0 lies beyond the trained points, the next grid point towards
   it is trained. The transfer regret (`experiments.analysis.regret`, the loss at x0 read off
   each width's curve) is then known at every width without extrapolation, as on a full grid,
   so the default verdict, which needs it at the widest width, is decided on the same evidence.
   Under µP x0 sits inside the bracket and this adds nothing; under SP it costs the points
   between the drifted optimum and x0, which is what "copying the LR costs X%" is measured on.
5. Diverged points are evidence: a diverged run's loss is +inf (one diverged seed makes the
   point +inf, `experiments.analysis.summary`), so it is never the best point and, as a
   trained neighbour, it closes that side (no run is ever planned past it, not even towards
   x0: the regret there is then reported as unknown rather than bought with more runs).

A sweep of one width walks its ladder instead (`experiments.spec.search.walked_ladder`: depth,
batch size or horizon, whichever it has first): the same rules with the rungs in the widths'
place, the drift fitted against log2(rung) as the ladder's analysis does. Its other ladders'
rungs split the groups, so a batch x horizon preset walks the batches at each horizon.

Everything is a pure function of the spec and the outcomes of the runs it asked for, so the
same results give the same plan: a runner killed mid-sweep and resumed makes exactly the
runs an uninterrupted one makes, with no state beyond the stored runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from experiments.analysis.curves import curve_optimum
from experiments.spec.run import GLOBAL_KNOBS, HParamsConfig, RunConfig
from experiments.spec.search import walked_ladder
from experiments.spec.sweep import SweepSpec, run_key

# States after which a run's outcome no longer changes (the store's terminal states).
ENDED = ("done", "diverged", "failed", "cancelled")
# States whose loss counts (`experiments.analysis.summary.FINISHED_STATES`).
FINISHED = ("done", "diverged")


@dataclass(frozen=True)
class RunOutcome:
    """What the store knows of one run: its state and final loss (None when not finished)."""

    state: str
    loss: float | None = None

    def value(self) -> float:
        """The loss the search uses: the loss, +inf if it diverged, NaN if it has none."""
        if self.state not in FINISHED:
            return math.nan
        if self.state == "diverged" or self.loss is None or not math.isfinite(self.loss):
            return math.inf
        return float(self.loss)


@dataclass
class Plan:
    """The planner's answer.

    Attributes:
        add: runs to queue now (not yet in the outcomes), in `spec.expand()` order.
        warnings: one line per optimum stuck at the grid's edge (or with no finite loss).
        complete: True when nothing will ever be added (every group reached its widest width).
        later_min: runs still to come at least, beyond `add` and what is stored: `bracket`
            points x seeds per width a group has not reached yet.
        optima: the log2-LR optimum found per (group label, width) so far.
    """

    add: list[RunConfig] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    later_min: int = 0
    optima: dict[tuple[str, int], float] = field(default_factory=dict)


@dataclass
class _Group:
    """One independently searched curve family: its runs by (width, grid index, seed)."""

    label: str
    runs: dict[tuple[int, int, int], RunConfig] = field(default_factory=dict)


def rung_of(run: RunConfig, word: str) -> int:
    """The run's value on the walked ladder (`walked_ladder`'s axis word)."""
    if word == "depth":
        return int(getattr(run.model, "depth", 0))
    if word == "batch size":
        return int(run.batch_size)
    if word == "horizon":
        return int(run.horizon or run.steps)
    return int(run.width)


def group_label(run: RunConfig, walked: str = "width") -> str:
    """The group a run belongs to, e.g. "sp", "mup d4" (depth ladder), "mup b32 s800" (batch
    and horizon ladders), "mup output_mult=2": its parametrization, the rungs of the ladders
    it does not walk (`walked`: the axis word the search walks) and global knobs away from
    their defaults (as in run keys)."""
    depth = [] if run.base_depth is None or walked == "depth" else [
        f"d{getattr(run.model, 'depth', '')}"]
    depth += [] if run.base_batch_size is None or walked == "batch size" else [
        f"b{run.batch_size}"]
    # The horizon rung, not the steps: a batch rung of one horizon trains fewer steps.
    depth += [] if run.horizon is None or walked == "horizon" else [f"s{run.horizon}"]
    defaults = HParamsConfig().model_dump()
    knobs = [f"{k}={v:g}" for k, v in sorted(run.hparams.model_dump().items())
             if k in GLOBAL_KNOBS and v != defaults[k]]
    return " ".join([run.parametrization, *depth, *knobs])


def _groups(spec: SweepSpec, walked: str) -> list[_Group]:
    """`spec.expand()` split into groups, runs keyed by (rung on the walked ladder, grid index,
    seed)."""
    index = {round(x, 9): i for i, x in enumerate(spec.log2_lrs())}
    groups: dict[str, _Group] = {}
    for run in spec.expand():
        label = group_label(run, walked)
        g = groups.setdefault(label, _Group(label))
        g.runs[(rung_of(run, walked), index[round(math.log2(run.lr), 9)], run.seed)] = run
    return list(groups.values())


def predict_log2(done: list[tuple[int, float]], width: int) -> float:
    """The predicted optimum (log2 LR) at `width` from (width, optimum) of finished widths.

    The latest optimum, moved along the least-squares drift line (log2 LR per doubling of
    width) through all finished widths; with one finished width, its optimum.
    """
    if len(done) == 1:
        return done[0][1]
    x = np.log2([w for w, _ in done])
    y = np.array([o for _, o in done])
    slope = float(np.polyfit(x, y, 1)[0])
    return done[-1][1] + slope * (math.log2(width) - x[-1])


def initial_points(spec: SweepSpec, width_pos: int, done: list[tuple[int, float]],
                   rungs: list[int] | None = None) -> list[int]:
    """The grid indices a width (a rung of `rungs`, default the widths) starts with: the whole
    grid, or the bracket (rule 2)."""
    grid = spec.log2_lrs()
    rungs = spec.widths if rungs is None else rungs
    if width_pos < spec.search.full_widths or not done:
        return list(range(len(grid)))  # a full width, or no finite optimum to predict from
    target = predict_log2(done, rungs[width_pos])
    centre = min(range(len(grid)), key=lambda i: (abs(grid[i] - target), i))
    half = spec.search.bracket // 2
    return list(range(max(0, centre - half), min(len(grid), centre + half + 1)))


def next_point(means: dict[int, float], n_grid: int) -> tuple[int | None, str | None]:
    """Rule 3: the grid index to train next (None when settled) and any warning.

    Args:
        means: seed-mean loss per trained grid index (contiguous; +inf diverged, NaN no data).
        n_grid: how many points the grid has.
    """
    pts = sorted(means)
    vals = np.array([means[i] for i in pts])
    if not np.isfinite(vals).any():
        if np.isinf(vals).any() and pts[0] > 0:
            return pts[0] - 1, None  # everything diverged: look at smaller LRs
        return None, "no finite loss at any trained LR (every run diverged or failed)"
    best = pts[int(np.nanargmin(np.where(np.isnan(vals), np.inf, vals)))]
    if best == pts[0]:
        return (best - 1, None) if best > 0 else (
            None, "optimum at the grid's lower edge: extend the LR grid below it")
    if best == pts[-1]:
        return (best + 1, None) if best < n_grid - 1 else (
            None, "optimum at the grid's upper edge: extend the LR grid above it")
    return None, None


def span_point(means: dict[int, float], grid: list[float], x0: float) -> int | None:
    """Rule 4: the next grid index towards the proxy's optimum `x0` while the trained
    (contiguous) points do not span it; None once they do, at the grid's end, or at a wall."""
    lo, hi = min(means), max(means)
    if x0 < grid[lo] - 1e-9 and lo > 0 and not math.isinf(means[lo]):
        return lo - 1
    if x0 > grid[hi] + 1e-9 and hi < len(grid) - 1 and not math.isinf(means[hi]):
        return hi + 1
    return None


def _means(g: _Group, width: int, points: list[int], seeds: list[int],
           outcomes: Mapping[str, RunOutcome]) -> dict[int, float]:
    """Seed-mean loss per grid index (NaN seeds skipped, one +inf seed makes it +inf)."""
    out = {}
    for i in points:
        vals = np.array([outcomes[run_key(g.runs[(width, i, s)])].value() for s in seeds])
        known = vals[~np.isnan(vals)]
        out[i] = float(known.mean()) if known.size else math.nan
    return out


def _settle_width(spec: SweepSpec, g: _Group, pos: int, done: list[tuple[int, float]],
                  outcomes: Mapping[str, RunOutcome], plan: Plan,
                  walk: tuple[str, list[int]] = ("width", [])) -> bool:
    """Walk one width (rung of the walked ladder) of one group: queue what it needs next, or
    record its optimum.

    Returns True when the width is settled (its optimum, if any, appended to `done`).
    """
    word, rungs = walk[0], walk[1] or spec.widths
    width, grid, seeds = rungs[pos], spec.log2_lrs(), spec.seeds
    points = initial_points(spec, pos, done, rungs)
    while True:
        runs = [g.runs[(width, i, s)] for i in points for s in seeds]
        missing = [r for r in runs if run_key(r) not in outcomes]
        if missing or any(outcomes[run_key(r)].state not in ENDED for r in runs):
            plan.add.extend(missing)
            return False
        means = _means(g, width, points, seeds, outcomes)
        nxt, warning = next_point(means, len(grid))
        if nxt is None and done:  # done[0]: the proxy, the narrowest width with an optimum
            nxt = span_point(means, grid, done[0][1])
        if nxt is None:
            break
        points = sorted({*points, nxt})
    if warning:
        plan.warnings.append(f"{g.label} {word} {width}: {warning}")
    xs = np.array([grid[i] for i in points if not math.isnan(means[i])])
    ys = np.array([means[i] for i in points if not math.isnan(means[i])])
    opt = curve_optimum(xs, ys) if xs.size else None
    if opt is not None:
        done.append((width, opt.opt_log2))
        plan.optima[(g.label, width)] = opt.opt_log2
    return True


def plan_runs(spec: SweepSpec, outcomes: Mapping[str, RunOutcome]) -> Plan:
    """The runs to queue next for an adaptive sweep (the module docstring has the rule).

    Args:
        spec: the sweep's spec (`search.kind` adaptive; a grid spec plans its whole grid).
        outcomes: run key -> outcome of every stored run of the sweep.

    Returns:
        The plan; `plan.add` is empty when every run the search needs is already stored.
    """
    plan = Plan()
    if spec.search.kind != "adaptive":
        plan.add = [r for r in spec.expand() if run_key(r) not in outcomes]
        return plan
    per_width = min(spec.search.bracket, len(spec.log2_lrs())) * len(spec.seeds)
    walk = walked_ladder(spec)
    rungs = walk[1]
    for g in _groups(spec, walk[0]):
        done: list[tuple[int, float]] = []
        for pos in range(len(rungs)):
            if not _settle_width(spec, g, pos, done, outcomes, plan, walk):
                plan.complete = False
                plan.later_min += per_width * (len(rungs) - pos - 1)
                break
    order = {run_key(r): i for i, r in enumerate(spec.expand())}
    plan.add.sort(key=lambda r: order[run_key(r)])
    return plan


def run_bounds(spec: SweepSpec) -> tuple[int, int]:
    """(fewest, most) runs the sweep can make: what Setup shows before launch.

    Adaptive: the full grid at the full widths plus one bracket per wider width (fewest; each
    bracket can grow), up to the full grid (most). Grid: the full grid both ways.
    """
    total = spec.n_runs()
    if spec.search.kind != "adaptive":
        return total, total
    n_lrs = len(spec.log2_lrs())
    n_rungs = len(walked_ladder(spec)[1])
    per_width = total // (n_rungs * n_lrs)  # seeds x groups
    full = min(spec.search.full_widths, n_rungs)
    fewest = per_width * (full * n_lrs + (n_rungs - full) * min(spec.search.bracket, n_lrs))
    return fewest, total


def adaptive_widths(spec: SweepSpec) -> list[int]:
    """The widths whose LRs the adaptive search chose (every width past the full ones); none
    when it walks another ladder (every width is then searched in part)."""
    if spec.search.kind != "adaptive" or walked_ladder(spec)[0] != "width":
        return []
    return spec.widths[spec.search.full_widths:]


def replay(spec: SweepSpec, outcome_of: Callable[[RunConfig], RunOutcome],
           max_rounds: int = 10_000) -> tuple[dict[str, RunOutcome], Plan, int]:
    """Run the search against `outcome_of` (a loss surface, or a finished grid sweep's results)
    instead of training: what an adaptive sweep would train, round by round.

    Returns:
        (outcome per trained run key, the final plan with its warnings and optima, rounds).
    """
    outcomes: dict[str, RunOutcome] = {}
    for rounds in range(max_rounds):
        plan = plan_runs(spec, outcomes)
        if not plan.add:
            return outcomes, plan, rounds
        for run in plan.add:
            outcomes[run_key(run)] = outcome_of(run)
    raise RuntimeError(f"the search did not settle in {max_rounds} rounds")
