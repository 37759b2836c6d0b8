"""runtime.SideLane: a stage in a spawned process beside this one, widened to more threads
later, its value or its error handed back, and dying with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from sat2scape import runtime

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SideLane uses SIGUSR1 and prctl (Linux)")


def threads_once_widened(ready: str = "", timeout: float = 60.0) -> tuple[int, int]:
    """In a lane started with 1 thread: (threads at the start, threads once a widen() came and a
    loop's configure_cpu(1) ran). `ready`: a file touched once the start is read."""
    start = torch.get_num_threads()
    if ready:
        Path(ready).touch()
    t0 = time.time()
    while torch.get_num_threads() == 1 and time.time() - t0 < timeout:
        time.sleep(0.02)
    runtime.configure_cpu(1)  # what a training loop started in the lane with --threads 1 does
    return start, torch.get_num_threads()


def test_a_side_lane_hands_back_its_value_in_another_process():
    lane = runtime.SideLane(os.getpid)
    assert lane.result() not in (os.getpid(), None)
    assert lane.process.exitcode == 0


def test_a_side_lane_raises_its_error_here():
    lane = runtime.SideLane(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        lane.result()


def started(lane_ready: Path, timeout: float = 60.0) -> None:
    """Wait until the lane has read its starting threads (a widen() before that would race it)."""
    t0 = time.time()
    while not lane_ready.exists():
        assert time.time() - t0 < timeout, "the lane never read its threads"
        time.sleep(0.02)


def test_a_widen_at_once_reaches_the_lane_and_a_loop_keeps_its_threads():
    # the constructor returns once the lane runs with its handler set (SIGUSR1's default action
    # would kill it), so even the first instant's widen() reaches it
    lane = runtime.SideLane(threads_once_widened, threads=1, widen_to=3)
    lane.widen()
    assert lane.result()[1] == 3  # widened, and the loop's configure_cpu(1) does not take them back


def test_widen_gives_a_lane_started_on_one_thread_more(tmp_path):
    lane = runtime.SideLane(threads_once_widened, str(tmp_path / "ready"), threads=1, widen_to=3)
    started(tmp_path / "ready")
    lane.widen()
    assert lane.result() == (1, 3)


def test_finish_widens_the_lane_and_gives_this_process_its_threads_back(tmp_path):
    before = torch.get_num_threads()
    lane = runtime.SideLane(threads_once_widened, str(tmp_path / "ready"), threads=1, widen_to=2)
    torch.set_num_threads(1)  # this lane's own work, as a loop started with --threads 1 leaves it
    try:
        started(tmp_path / "ready")
        assert lane.finish() == (1, 2)
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_a_lane_that_dies_is_named_with_its_exit_code():
    lane = runtime.SideLane(os._exit, 3)
    with pytest.raises(RuntimeError, match="running _exit died") as e:
        lane.result()
    assert "exit code 3" in str(e.value) and "resume" in str(e.value)


def test_a_script_without_a_main_guard_is_told_at_once(tmp_path):
    script = tmp_path / "sweep.py"  # spawn imports the main script again, which starts a lane again
    script.write_text("import os\nfrom sat2scape import runtime\nprint(runtime.SideLane(os.getpid).result())\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "could not start" in done.stderr and 'if __name__ == "__main__":' in done.stderr


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has died: only its exit status waits to be read


def test_a_side_lane_dies_with_its_parent_even_on_kill_9():
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from sat2scape import runtime\n"
         "lane = runtime.SideLane(time.sleep, 600)\n"
         "print(lane.process.pid, flush=True)\n"
         "time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(3)  # the child is past its start, inside time.sleep
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while alive(child) and time.time() - t0 < 20:
            time.sleep(0.1)
        assert not alive(child), "the side lane outlived its parent"
    finally:
        parent.kill()
