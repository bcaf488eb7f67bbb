"""CPU and memory accounting from /proc: process trees, utime+stime, machine busy time, VmHWM.

The parsers take the file text so they can be tested without a live process.
"""

from __future__ import annotations

import collections
import os
import resource
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(stat: str) -> list[str]:
    """Fields of /proc/<pid>/stat after the `(comm)`, which may itself hold spaces or `)`."""
    return stat.rpartition(")")[2].split()


def stat_ppid(stat: str) -> int:
    return int(stat_fields(stat)[1])


def stat_cpu_ticks(stat: str) -> int:
    """utime + stime (fields 14 and 15 of proc(5)) in clock ticks."""
    fields = stat_fields(stat)
    return int(fields[11]) + int(fields[12])


def machine_busy_total(proc_stat: str) -> tuple[int, int]:
    """(busy, total) jiffies from the `cpu` line of /proc/stat (idle and iowait are not busy)."""
    fields = [int(x) for x in proc_stat.split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    return total - (fields[3] + fields[4]), total


def status_kib(status: str, name: str) -> int:
    """A `Name:  123 kB` figure of /proc/<pid>/status in KiB (0 when absent)."""
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """root and every process below it, given pid -> ppid."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # the process went away between listing and reading
        return None


def tree_pids(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _read(f"/proc/{entry}/stat")) is not None:
            parents[int(entry)] = stat_ppid(stat)
    return descendants(root, parents)


def cpu_ticks(pids: list[int]) -> int:
    return sum(stat_cpu_ticks(s) for p in pids if (s := _read(f"/proc/{p}/stat")) is not None)


def machine_ticks() -> tuple[int, int]:
    return machine_busy_total(Path("/proc/stat").read_text())


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk runs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def peak_rss_kib(pids: list[int]) -> int:
    return sum(status_kib(s, "VmHWM") for p in pids
               if (s := _read(f"/proc/{p}/status")) is not None)
