"""Two processes writing one store file at once (a recording server and the runner)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from testbeds_evals.events import Message
from testbeds_evals.store import Store

# Each writer meets the other at two barriers: before opening the (fresh) file, so migration and
# idempotent creation race, and before appending, so the appends interleave.
WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from testbeds_evals.events import Message
    from testbeds_evals.store import Store

    db, tag, count, sync = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
    peers = sys.argv[5:]

    def barrier(name):
        (sync / f"{name}.{tag}").touch()
        deadline = time.monotonic() + 30
        while not all((sync / f"{name}.{peer}").exists() for peer in peers):
            if time.monotonic() > deadline:
                sys.exit(f"{tag}: peers never reached {name}")
            time.sleep(0.001)

    barrier("open")
    with Store(db) as store:
        run_id = store.create_run(suite="s", model="m", run_id="shared-run")
        episode = store.create_episode(run_id, suite="s", episode_id="shared-episode")
        barrier("append")
        for i in range(count):
            store.append(episode, Message(role="user", content=f"{tag}:{i}"))
    """
)


def test_two_processes_appending_to_one_episode_keep_seqs_unique_and_gap_free(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    tags = ("server", "runner")
    count = 100
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), tag, str(count), str(tmp_path), *tags],
            stderr=subprocess.PIPE,
        )
        for tag in tags
    ]
    try:
        for writer in writers:
            _, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err.decode()
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    with Store(db) as store:
        numbered = store.events_with_seq("shared-episode")
        assert len(store.runs()) == 1
        assert len(store.episodes()) == 1
    assert [seq for seq, _ in numbered] == list(range(2 * count))
    contents = [e.content for _, e in numbered if isinstance(e, Message)]
    for tag in tags:
        assert [c for c in contents if c.startswith(tag)] == [f"{tag}:{i}" for i in range(count)]
