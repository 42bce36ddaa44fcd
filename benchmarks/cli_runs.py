"""The command line, timed from outside: start-up, a folder run, and peak memory.

Each command runs as a child process; its peak RSS comes from the kernel (``wait4``), its
RSS over time from sampling ``/proc/PID/status``, and its CPU time from its rusage (CPU
seconds / wall seconds = cores kept busy).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def colorize_command() -> list[str]:
    """The installed ``colorize`` script beside this Python, else ``python -m colorize``."""
    script = Path(sys.executable).parent / "colorize"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "colorize"]


def run_child(command: list[str], env: dict | None = None, sample_rss: bool = False) -> dict:
    """Run to completion; wall seconds, CPU seconds, peak RSS (MB), exit code, RSS samples."""
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child never blocks on it
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=env)
    samples: list[tuple[float, float]] = []
    sampler = None
    if sample_rss:
        sampler = threading.Thread(target=_sample_rss, args=(child.pid, started, samples), daemon=True)
        sampler.start()
    # wait4 gives this child's own rusage (peak RSS, CPU), not all children's together.
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    errors.seek(0)
    stderr = errors.read().decode(errors="replace")
    errors.close()
    if sampler is not None:
        sampler.join(timeout=1)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "exit_code": child.returncode,
        "stderr_tail": stderr[-400:] if child.returncode else "",
        "rss_samples": samples,
    }


def _sample_rss(pid: int, started: float, samples: list, every: float = 0.1) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:  # the child has exited (or there is no /proc: no samples)
            return
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                samples.append((time.perf_counter() - started, int(line.split()[1]) / 1024))
        time.sleep(every)


def startup(reps: int = 5) -> dict:
    """``colorize --help`` and ``colorize --version``: median and worst wall time."""
    results = {}
    for flag in ("--help", "--version"):
        times = [run_child([*colorize_command(), flag])["wall_s"] for _ in range(reps)]
        results[flag] = {"median_s": statistics.median(times), "max_s": max(times), "runs": reps}
    return results


def folder_run(
    folder: Path, output: Path, env: dict | None = None, extra: list[str] = (), settled_after: float = 0.0
) -> dict:
    """``colorize auto FOLDER -o OUTPUT`` with default settings, from a clean output folder.

    ``settled_after``: seconds of start-up (model loading, the first batch) to leave out
    when judging whether memory stays flat.
    """
    if output.exists():
        shutil.rmtree(output)
    count = sum(1 for _ in folder.iterdir())
    result = run_child([*colorize_command(), "auto", str(folder), "-o", str(output), *extra], env=env, sample_rss=True)
    written = sum(1 for _ in output.rglob("*.jpg")) if output.exists() else 0
    result.update(
        images=count,
        written=written,
        images_per_s=count / result["wall_s"],
        cores_busy=result["cpu_s"] / result["wall_s"],
        rss_flat=_rss_flatness(result["rss_samples"], settled_after),
    )
    return result


def _rss_flatness(samples: list[tuple[float, float]], settled_after: float) -> dict:
    """Peak RSS in the first and the second half of the settled run: flat if the second is no higher."""
    settled = [(t, rss) for t, rss in samples if t >= settled_after]
    if len(settled) < 4:
        return {"first_half_mb": None, "second_half_mb": None, "settled_after_s": settled_after}
    middle = (settled[0][0] + settled[-1][0]) / 2
    first = max(rss for t, rss in settled if t <= middle)
    second = max(rss for t, rss in settled if t > middle)
    return {"first_half_mb": first, "second_half_mb": second, "settled_after_s": settled_after}


class LoadMeter:
    """How busy the machine was with *other* work while the benchmark ran (in cores)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.busy = _busy_seconds()
        self.ours = _our_cpu_seconds()
        self.loadavg = os.getloadavg()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.started
        result = {"wall_s": wall, "loadavg_start": self.loadavg, "loadavg_end": os.getloadavg()}
        busy = _busy_seconds()
        if busy is not None and self.busy is not None:
            other = (busy - self.busy) - (_our_cpu_seconds() - self.ours)
            result["other_processes_cores"] = max(0.0, other / wall)
        return result


def _busy_seconds() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)
