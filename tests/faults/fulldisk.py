"""A full disk for real: the store on a small tmpfs (root only), a live load that fills it, then more room.

Not a CI test (it mounts a filesystem). Figures in RELIABILITY.md. Run as root from the project root::

    .venv/bin/python -m tests.faults.fulldisk /tmp/fulldisk 40m 200000
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dossier_runtime.broker import start_broker, stop_broker
from tests.test_consumers_support import dossier, events, keyed, publish
from tests.test_faults_live import Loader, exact_content


def main(mount: Path, size: str, n: int) -> None:
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    broker = start_broker()
    try:
        data = mount / "data"
        env = {
            "DOSSIER_DATA_DIR": str(data),
            "DOSSIER_KAFKA_BOOTSTRAP": broker.bootstrap,
            "DOSSIER_TOPIC": "t",
            "DOSSIER_PARTITIONS": "6",
        }
        evs = events(n // 8)
        publish(broker.bootstrap, "t", [])
        lines: list[str] = []
        loader = Loader(env, lines)
        loader.wait_assigned()
        publish(broker.bootstrap, "t", keyed(evs))
        try:
            loader.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            print("the loader still runs after 120 s")
        print("first run: exit", loader.stop())
        print("".join(lines)[-2500:])
        print(subprocess.run(["df", "-h", str(mount)], capture_output=True, text=True).stdout)
        subprocess.run(["mount", "-o", "remount,size=2g", str(mount)], check=True)
        again = dossier("consume", "run", "--stop-when-idle", "3", "--format", "json", env=env, timeout=600)
        print("restart: exit", again.returncode, again.stdout, again.stderr[-800:])
        print("fault-summary:", json.dumps(exact_content(data, evs)))
    finally:
        stop_broker(broker)
        subprocess.run(["umount", str(mount)], check=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
