"""``tracemark serve --role sequencer,witnessing`` in two real processes on one PostgreSQL
database, a real witness on loopback (issue 16): the holder of both roles is SIGKILLed
mid-load; the other takes both over within the lease's bound; every entry is sequenced
once, and the newest checkpoint is published, cosigned, once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.logkeys import load_log_note_keys
from registry.witnessconfig import init_witness, load_witness_config
from tests.api.test_roles import (
    SCHEDULING_SLACK,
    TAKEOVER_BOUND,
    Deployment,
    Load,
    _check_sequenced_once,
    _until,
    deployment,  # noqa: F401  (the fixture)
)
from tests.witness_server import running_witness

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _published(of: Deployment) -> list[int]:
    with of.engine.connect() as conn:
        return [
            int(size)
            for (size,) in conn.execute(
                text(
                    "SELECT tree_size FROM checkpoints WHERE published_at IS NOT NULL"
                    " ORDER BY tree_size"
                )
            )
        ]


def test_a_killed_witnessing_holder_is_taken_over_and_the_newest_checkpoint_published(
    deployment: Deployment,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    data = Path(deployment.env["TRACEMARK_DATA_DIR"])
    keys = load_log_note_keys(data, "127.0.0.1:8000/tlog")  # the default public URL's origin
    config = load_witness_config(init_witness(tmp_path / "w1", "witness.test/w1", [keys.vkeys()]))
    with running_witness(config) as (url, _app):
        policy = tmp_path / "witnesses.policy"
        policy.write_text(f"witness w1 {config.vkeys()[0]} {url}\nquorum w1\n")
        deployment.env["TRACEMARK_WITNESS_POLICY"] = str(policy)
        roles = "sequencer,witnessing"
        first = deployment.start("first", roles)
        for role in ("sequencer", "witnessing"):
            _until(f"the first holds {role}", lambda r=role: deployment.holder_pid(r) == first.pid)
        second = deployment.start("second", roles)
        deployment.until_standing_by("second", "witnessing")
        load = Load(deployment.registry, 150, pause=0.02)
        _until("the first publishes", lambda: len(_published(deployment)) > 3, 60)
        first.kill()
        killed_at = time.monotonic()
        assert first.wait(10) == -signal.SIGKILL
        for role in ("sequencer", "witnessing"):
            _until(
                f"the second takes {role} over",
                lambda r=role: deployment.holder_pid(r) == second.pid,
            )
        assert time.monotonic() - killed_at < TAKEOVER_BOUND + SCHEDULING_SLACK
        load.finish()
        _check_sequenced_once(deployment, load)
        size = deployment.scalar("SELECT tree_size FROM log_state")
        _until("the newest checkpoint is published", lambda: _published(deployment)[-1] == size)
    published = _published(deployment)
    assert published == sorted(set(published))
    with deployment.engine.connect() as conn:
        cosigned = conn.execute(text("SELECT tree_size, failures FROM checkpoint_witnesses")).one()
    assert tuple(cosigned) == (size, 0)  # the witness's last cosignature: the newest, no failure
    # Both published: the first before the kill, the second after it.
    for name in ("first", "second"):
        assert "published, cosigned by all" in deployment.log_of(name), name
    assert "NOT published" not in deployment.log_of("first") + deployment.log_of("second")
