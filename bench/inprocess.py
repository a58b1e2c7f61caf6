"""Part 4 of the benchmark in one process, for profiling (issue 13; see BENCHMARKS.md).

Delivers the events of part 4 by calling each job's ``_deliver`` here, one job after the other,
against a receiver of its own, and times in the same rounds the bare loop (record mode) or the
hand-written scheduled action (batch mode) of ``bench/driver.py``. No server, job runner nor
polling: the figures show the delivery code alone, steadier than part 4 on a busy machine.

Runs on a database left by ``tools/bench --parts=4 --keep-db`` (its contacts and its two
configurations), which it changes (new logs, status rows). ``--profile``: prints the cProfile
statistics of the deliveries. Example, with the paths ``tools/bench`` prints::

    <venv>/bin/python bench/inprocess.py --odoo <odoo tree> --conf .build/odoo-<db>.conf \\
        --db <db> --mode batch
"""

import argparse
import cProfile
import os
import pstats
import sys
import time

from driver import REPO, Bench, ReceiverProcess, median

EVENTS = {"record": 300, "batch": 10_000}  # per round, as in part 4


def deliver_round(bench, cr, config, ids, mode, profiler):
    """Queue the round's events, then deliver them job by job; returns ``(events/s, logs,
    statements per job, seconds to queue)``."""
    records = bench.env(cr, 1)["res.partner"].browse(ids)
    started = time.perf_counter()
    logs = config.send_batch(records) if mode == "batch" else config.sync_record(records, "update")
    cr.commit()
    queued_s = time.perf_counter() - started
    config.env.invalidate_all()
    jobs = logs._job_groups()
    statements = cr.sql_log_count
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for job in jobs:
        job._deliver()
        cr.commit()
    if profiler:
        profiler.disable()
    rate = len(ids) / (time.perf_counter() - started)
    return rate, logs, (cr.sql_log_count - statements) / len(jobs), queued_s


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--odoo", "--conf", "--db"):
        parser.add_argument(name, required=True)
    parser.add_argument("--mode", choices=sorted(EVENTS), default="record")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    args.quick = False
    receiver = ReceiverProcess(sys.executable, 0.0, os.path.join(REPO, ".build"))
    profiler = cProfile.Profile() if args.profile else None
    ratios = []
    try:
        bench = Bench(args)
        ids = bench.contact_ids("b-small")
        with bench.cursor() as cr:
            name = "bench batch" if args.mode == "batch" else "bench record"
            config = bench.env(cr, 1)["api.sync.config"].search(
                [("name", "=", name)], order="id desc", limit=1
            )
            config.endpoint_url = receiver.url
            cr.commit()
            n = EVENTS[args.mode]
            for round_no in range(args.rounds):
                chunk = ids[:n] if args.mode == "batch" else ids[round_no * n : (round_no + 1) * n]
                rate, logs, statements, queued_s = deliver_round(
                    bench, cr, config, chunk, args.mode, profiler
                )
                if args.mode == "batch":
                    other = len(chunk) / bench._handwritten(receiver.url, chunk)
                    label = "hand-written"
                else:
                    other = len(chunk) / bench._bare(receiver.url, bench._bodies(logs.ids))
                    label = "bare loop"
                ratios.append(rate / other)
                print(
                    f"round {round_no + 1}: {args.mode} {rate:.0f}/s (queued in {queued_s:.2f} s, "
                    f"{statements:.1f} statements per job), {label} {other:.0f}/s, "
                    f"ratio {ratios[-1]:.3f}"
                )
    finally:
        receiver.stop()
    print(f"median ratio {median(ratios):.3f}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(50)


if __name__ == "__main__":
    main()
