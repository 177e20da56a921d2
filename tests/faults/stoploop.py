"""SIGSTOP/SIGCONT of the loader, its reader, both, or the broker during a live load, with and without a broker
restart while they are stopped; a hunt for the reader's SIGSEGV. Not CI: a loop to run by hand.

Each round publishes half a chunk, stops a random target for 1-9 s (in 60% of the rounds restarting the broker,
empty, meanwhile, then re-publishing everything so far, as producers would from their files), publishes the other
half and waits until the store holds everything published. At the end: the store against the input, and every
crash report or "killed by" line of the loader's stderr. Figures in RELIABILITY.md. From the project root::

    SEED=7 .venv/bin/python -m tests.faults.stoploop /tmp/stoploop 24 4000
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from dossier_runtime.broker import BrokerHandle, free_port, start_broker, stop_broker
from dossier_runtime.kafka import ensure_topic
from tests.test_consumers_kafka import _publish_when_ready
from tests.test_consumers_support import dossier, events, keyed, publish
from tests.test_faults_live import CRASH_SIGNS, Loader, _children, exact_content

TOPIC = "dossier-events"


def _caught_up(loader: Loader, env: dict[str, str], published: int, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and loader.proc.poll() is None:
        status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
        if status.returncode == 0 and json.loads(status.stdout)[0]["events"] >= published:
            return True
        time.sleep(1)
    return False


def main(tmp: Path, rounds: int, per: int) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    rng = random.Random(int(os.environ.get("SEED", "7")))
    port = free_port()
    broker: BrokerHandle = start_broker(port=port, log_path=tmp / "broker.log")
    env = {
        "DOSSIER_DATA_DIR": str(tmp / "data"),
        "DOSSIER_KAFKA_BOOTSTRAP": broker.bootstrap,
        "DOSSIER_TOPIC": TOPIC,
        "DOSSIER_PARTITIONS": "6",
    }
    evs = events(rounds * per // 8)
    messages = keyed(evs)
    lines: list[str] = []
    ensure_topic(broker.bootstrap, TOPIC, 6)
    loader = Loader(env, lines)
    loader.wait_assigned()
    started = time.monotonic()
    tally: dict[str, int] = {}
    published = 0
    try:
        for r in range(rounds):
            chunk = messages[r * per : (r + 1) * per]
            half = len(chunk) // 2
            publish(broker.bootstrap, TOPIC, chunk[:half])
            time.sleep(rng.uniform(0, 0.5))
            target = rng.choice(["owner", "reader", "both", "broker"])
            restart = rng.random() < 0.6
            readers = _children(loader.proc.pid)
            assert broker.pid is not None
            pids = {
                "owner": [loader.proc.pid],
                "reader": readers,
                "both": [loader.proc.pid, *readers],
                "broker": [broker.pid],
            }[target]
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(rng.uniform(1, 9))
            if restart and target != "broker":
                stop_broker(broker)
                broker = start_broker(port=port, log_path=tmp / "broker.log")
                ensure_topic(broker.bootstrap, TOPIC, 6)
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            if restart and target == "broker":
                stop_broker(broker)
                broker = start_broker(port=port, log_path=tmp / "broker.log")
            if restart:  # the new broker holds nothing: publish everything so far again
                _publish_when_ready(broker.bootstrap, TOPIC, messages[: r * per + half])
            publish(broker.bootstrap, TOPIC, chunk[half:])
            published = (r + 1) * per
            key = f"{target}{'+restart' if restart else ''}"
            tally[key] = tally.get(key, 0) + 1
            ok = _caught_up(loader, env, published)
            crashes = sum(any(sign in line for sign in (*CRASH_SIGNS, "SIGSEGV")) for line in lines)
            print(f"round {r} {key}: caught up {ok}, {time.monotonic() - started:.0f} s, crash lines {crashes}")
            if loader.proc.poll() is not None:
                print("the loader exited", loader.proc.returncode, loader.log())
                loader = Loader(env, lines)
                loader.wait_assigned()
    finally:
        code = loader.stop()
        stop_broker(broker)
    print("exit", code)
    print("crash lines:", "".join(line for line in lines if any(s in line for s in (*CRASH_SIGNS, "killed by"))))
    found = exact_content(tmp / "data", evs[:published])
    print("fault-summary:", json.dumps({"rounds": rounds, "tally": tally, **found}))
    (tmp / "loader.log").write_text("".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 4000)
