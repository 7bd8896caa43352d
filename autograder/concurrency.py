"""Evidence of parallel work that a busy machine cannot hide: how much of a run's episode work ran at once
in different processes, from the episodes each process claims and the CPU time the grader saw each one use.

The episode records say which process played each episode and when it started and ended (the system's
monotonic clock). The run's own processes write them, so they are claims. The watchdog samples, every
few milliseconds, the time each process of the run has spent running on a core and waiting, runnable,
for one (``reaper.Tracker``, from ``/proc``), and the CPU time of the whole run (its control group's count
where there is one): those are the kernel's. In each sampling interval a process's claimed episode time
counts only as far as that process really ran, or waited for a core, in that interval.

* ``concurrency``: the claimed episode time so backed, summed over processes, over the time at least one
  claimed episode was in progress: how many processes were playing at once, on average, while any was.
  Two workers sharing each generation: near 2, still near 2 when they share one busy core (waiting for a
  core counts, sleeping does not). Workers that take turns (a lock, a semaphore, a pipe), one busy worker
  or threads of one process: 1 at most, since one process's claims count once and claims that take turns
  do not overlap. Processes credited with episodes they did not play (idle, or asleep while another
  plays): near 0 for their share.
* ``outside_share``: the part of the run's CPU time (the kernel's count for its control group), while a
  generation was played, used by processes that claim none of its episodes (the caller included). Near 0
  for a Pool, whose caller waits in ``pool.map``; high when the work is done by a process that does not
  claim it, however busy the processes credited with the episodes keep themselves.
* ``backing``: the least share of a process's claimed episode time in which it ran or waited for a core.
  Near 1 for any process that really played; near 0 for one credited with episodes while it slept.
* ``impossible_share``: the part of the claimed time that lies outside the run's life (before it started
  or after it ended): 0 for any real record.
* ``idle_seconds``: time in which no process of the run was running or ready to run (sampled process
  states, over the whole run): a pause per generation shows here
  however busy the machine, while the work's own time grows with the load. With ``work_seconds`` (the
  claiming processes' CPU time) and the concurrency it gives :func:`estimated_speedup`, the speedup the
  run's structure would reach on free cores.

What a forger would need to pass: claimed episodes that overlap in time in different processes, each of
those processes running (or waiting for a core) through its claims, and the work done inside those
processes, not beside them. Claiming processes that spin through forged, overlapping claims while they
take turns at the real work meet all three; on free cores the speedup judged from outside still shows
them (no speedup at all), and their CPU time is about twice the reference's for the same work
(``work_seconds``).
"""

from __future__ import annotations

from bisect import bisect_left

Interval = tuple[int, int]
STARTED_BEFORE = 500_000_000
"""Nanoseconds a run may have started before the watchdog began to watch it (a starved grader looks late)."""
ENDED_AFTER = 50_000_000
"""Nanoseconds a run may have gone on after the watchdog's last sample, or twice the longest gap between two
samples if more (a starved grader looks late)."""


def union(intervals: list[Interval]) -> list[Interval]:
    """The same time as disjoint intervals, in order (empty and reversed ones dropped)."""
    merged: list[list[int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def covered(disjoint: list[Interval], start: int, end: int) -> int:
    """How much of ``[start, end]`` the disjoint, ordered ``disjoint`` intervals cover."""
    total = 0
    for a, b in disjoint[max(0, bisect_left(disjoint, (start, start)) - 1) :]:
        if a >= end:
            break
        total += max(0, min(b, end) - max(a, start))
    return total


def _value_at(series: list[list[int]], k: int) -> tuple[int, int]:
    """A process's (ns run, ns waited) at sample ``k``: its last sample up to ``k``; 0 before its first (it was
    born after the sample before its first: the watchdog looks at every sample)."""
    i = bisect_left(series, [k + 1]) - 1
    return (series[i][1], series[i][2]) if i >= 0 else (0, 0)


def _window(polls: list[int], start: int, end: int) -> tuple[int, int] | None:
    """The samples enclosing ``[start, end]`` (the last at or before its start, the first at or after its end,
    within those taken), or None when fewer than two samples fall in reach."""
    if not polls:
        return None
    a = max(0, bisect_left(polls, start + 1) - 1)
    b = min(len(polls) - 1, bisect_left(polls, end))
    return (a, b) if b > a else None


def _measure(claims: dict[int, list[Interval]], samples: dict, windows: list[Interval]) -> dict:
    """The evidence (see the module's docstring) of ``claims`` (process -> claimed intervals) in ``windows`` (the
    generations), each figure None where nothing was sampled.

    Each window is widened to the samples around it and judged as a whole: the kernel brings a process's
    counts up to date only when it is scheduled, so a count read between two samples may lag by one wait for
    a core, which over a whole generation is small."""
    polls, run_cpu = samples.get("polls") or [], samples.get("run_cpu") or []
    table = samples.get("processes") or {}
    series = {pid: sorted(list(s) for s in table.get(_key(pid, table), [])) for pid in claims}
    mine = {pid: union(spans) for pid, spans in claims.items()}
    everyone = union([i for spans in mine.values() for i in spans])
    claimed = sum(b - a for spans in mine.values() for a, b in spans)
    busy_time = sum(b - a for a, b in everyone)
    demanded = backed = workers_ran = run_total = 0.0
    per_process = {pid: [0.0, 0.0] for pid in mine}  # claimed time inside sampled windows, and backed
    claimed_in_windows = {pid: sum(covered(spans, a, b) for a, b in windows) for pid, spans in mine.items()}
    for start, end in windows:
        found = _window(polls[: len(run_cpu)], start, end)
        if found is None:
            continue
        a, b = found
        span = (max(polls[a], start), min(polls[b], end))
        anyone = covered(everyone, *span)
        if not anyone:
            continue
        demanded += anyone
        run_total += max(0, run_cpu[b] - run_cpu[a])
        for pid, spans in mine.items():
            share = covered(spans, *span)
            if not share:
                continue
            (ran_a, waited_a), (ran_b, waited_b) = _value_at(series[pid], a), _value_at(series[pid], b)
            mine_backed = min(max(0, ran_b - ran_a + waited_b - waited_a), share)
            backed += mine_backed
            workers_ran += max(0, ran_b - ran_a)
            per_process[pid][0] += share
            per_process[pid][1] += mine_backed
    sampled = sum(share for share, _ in per_process.values())
    lifetime = _lifetime(samples)
    outside = claimed - sum(covered(spans, *lifetime) for spans in mine.values()) if lifetime else 0
    return {
        "impossible_share": outside / claimed if claimed and lifetime else None,
        "concurrency": backed / demanded if demanded else None,
        # A run sampled a few times whose claims no sample covers claims nothing the grader saw.
        "backing": _least_backing(per_process, claimed_in_windows) if demanded or len(polls) >= 3 else None,
        "unsampled_share": max(0.0, 1 - sampled / claimed) if claimed else None,
        "outside_share": max(0.0, 1 - workers_ran / run_total) if run_total else None,
        "claimed_overlap": claimed / busy_time if busy_time else None,
        "sampled_seconds": demanded / 1e9,
        "work_seconds": workers_ran / 1e9,
    }


def _least_backing(per_process: dict[int, list[float]], claimed: dict[int, int]) -> float | None:
    """The least share of its claimed time a process ran or waited for a core, among processes holding at least a
    tenth of the largest claim (a worker handed one episode at the very start of a short run may slip between
    samples). Claimed time no sample covers (before the first, after the last) counts as not backed: a claim
    cannot hide from the samples by naming a time just outside them."""
    largest = max(claimed.values(), default=0)
    shares = [backed / claimed[pid] for pid, (_, backed) in per_process.items() if claimed[pid] >= largest / 10 > 0]
    return min(shares, default=None)


def idle_seconds(samples: dict, span: Interval) -> float | None:
    """Seconds of ``span`` (the whole run, as sampled) in which no process of the run was running or ready to
    run, by the samples (None without them): a pause, or time spent waiting on nothing the run does. A busy
    machine does not lengthen it, nor does a worker waiting for a core."""
    polls, runnable = samples.get("polls") or [], samples.get("runnable") or []
    idle = 0
    for k in range(1, min(len(polls), len(runnable))):
        if runnable[k] == 0 and runnable[k - 1] == 0:
            idle += max(0, min(polls[k], span[1]) - max(polls[k - 1], span[0]))
    return idle / 1e9 if len(runnable) >= 2 else None


def estimated_speedup(evidence: dict, needed: float | None = None) -> float | None:
    """The speedup the run's structure would give on free cores: the CPU time the work needs (``needed``, such
    as the reference's for the same workload; by default the run's own) over the time the run's workers took
    for it, their CPU time shared by their concurrency, plus the time the run slept (None when a figure is
    missing). Workers that burn CPU beside their episodes (spinning while they wait their turn) take longer
    for the same work than they claim to need."""
    work, conc, idle = evidence.get("work_seconds"), evidence.get("concurrency"), evidence.get("idle_seconds")
    if not work or not conc or idle is None:
        return None
    return (needed or work) / (work / conc + idle)


def _lifetime(samples: dict) -> Interval | None:
    """When the run's processes could have played: from just before the watchdog's first look to just after
    its last sample (None without samples)."""
    polls = samples.get("polls") or []
    if not polls:
        return None
    gap = max((b - a for a, b in zip(polls, polls[1:], strict=False)), default=0)
    return samples.get("created", polls[0]) - STARTED_BEFORE, polls[-1] + max(ENDED_AFTER, 2 * gap)


def _key(pid: int, table: dict):
    """``pid`` as ``table`` keys it (JSON turns integer keys into strings)."""
    return pid if pid in table else str(pid)


def evidence(episodes: list, samples: dict, *, pop_size: int, caller: int | None) -> dict:
    """The evidence of one run: ``concurrency``, ``work_share`` and ``claimed_overlap`` over the whole run and
    per generation, and one generation's ``timeline`` (which process played which episode when, and how much
    of each sampling interval it ran) for the student's chart.

    ``episodes``: the run's records in the order played (``pid``, ``t0``, ``t`` attributes); generation g is
    the g-th block of ``pop_size``."""
    claims: dict[int, list[Interval]] = {}
    for e in episodes:
        claims.setdefault(e.pid, []).append((e.t0, e.t))
    blocks = [episodes[i : i + pop_size] for i in range(0, len(episodes), pop_size)] if pop_size > 0 else []
    windows = [(min(e.t0 for e in block), max(e.t for e in block)) for block in blocks]
    sampled = len(samples.get("processes") or {})
    out = {**_measure(claims, samples, windows), "processes": len(claims), "sampled_processes": sampled}
    polls = samples.get("polls") or []
    out["idle_seconds"] = idle_seconds(samples, (polls[0], polls[-1])) if windows and polls else None
    out["generations"] = []
    for window in windows:
        out["generations"].append(_rounded(_measure(claims, samples, [window])))
    if blocks:
        out["timeline"] = timeline(blocks[len(blocks) // 2], samples, caller, len(blocks) // 2)
    return _rounded(out)


def timeline(block: list, samples: dict, caller: int | None, generation: int) -> dict:
    """One generation as the chart draws it: per process (caller first, then workers in order of their first
    episode), its episodes as [start ms, end ms] from the generation's first start, and the share of its
    claimed time it really ran or waited for a core (``backing``)."""
    origin = min(e.t0 for e in block)
    window = (origin, max(e.t for e in block))
    order = sorted({e.pid for e in block}, key=lambda p: (p != caller, min(e.t0 for e in block if e.pid == p)))
    rows = []
    for pid in order:
        spans = [(e.t0, e.t) for e in block if e.pid == pid]
        rows.append(
            {
                "caller": pid == caller,
                "episodes": [[round((a - origin) / 1e6, 2), round((b - origin) / 1e6, 2)] for a, b in spans],
                "backing": _measure({pid: spans}, samples, [window])["backing"],
            }
        )
    return {"generation": generation, "milliseconds": round((window[1] - origin) / 1e6, 2), "processes": rows}


def _rounded(data: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}
