"""bench.proctree: /proc parsing (from text) and the live readers on this test process."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.proctree import (
    cpu_ticks,
    descendants,
    machine_busy_total,
    peak_rss_kib,
    stat_cpu_ticks,
    stat_ppid,
    status_kib,
    tree_pids,
)

# comm may hold spaces and ")": fields count from the last ")".
STAT = "4242 (my (odd) name) S 7 4242 4242 0 -1 4194560 100 0 3 0 250 75 1 2 20 0 1 0 99 0 0"


def test_stat_fields_after_a_comm_with_spaces_and_parens() -> None:
    assert stat_ppid(STAT) == 7
    assert stat_cpu_ticks(STAT) == 250 + 75


def test_machine_busy_is_total_minus_idle_and_iowait() -> None:
    proc_stat = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\n"
    assert machine_busy_total(proc_stat) == (100 + 5 + 50 + 3 + 2 + 7, 1187)


def test_status_kib_reads_one_figure_and_zero_when_absent() -> None:
    status = "Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 9000 kB\n"
    assert status_kib(status, "VmHWM") == 12345
    assert status_kib(status, "VmSwap") == 0


def test_descendants_walks_the_whole_tree_and_nothing_else() -> None:
    parents = {2: 1, 3: 2, 4: 1, 5: 9, 6: 3}
    assert sorted(descendants(1, parents)) == [1, 2, 3, 4, 6]
    assert descendants(5, parents) == [5]


def test_live_tree_holds_a_child_and_its_cpu_and_rss_are_read() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        pids = tree_pids(os.getpid())
        assert os.getpid() in pids
        assert child.pid in pids
        assert cpu_ticks([os.getpid()]) > 0
        assert peak_rss_kib([os.getpid()]) > 0
        assert cpu_ticks([2**22 + 12345]) == 0  # a pid that does not exist counts nothing
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
