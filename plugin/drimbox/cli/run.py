"""``drimbox run``: start a box (and by default the DMP and PSC simulators) and stay in the foreground."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path


def default_data_dir() -> Path:
    base = os.environ.get("DRIMBOX_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "drimbox")
    return Path(base)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="start a DRIMbox with its simulators (Ctrl-C stops everything)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the box keeps its data, configuration and logs (default: $DRIMBOX_HOME or "
                             "~/.local/share/drimbox)")
    parser.add_argument("--no-simulators", action="store_true",
                        help="do not start the DMP and PSC simulators (no DMP publication)")
    parser.add_argument("--stable-age", type=int, default=10,
                        help="seconds without new instance before a study counts as complete (Orthanc StableAge)")
    parser.add_argument("--two-boxes", action="store_true",
                        help="start box-a and box-b (a two-box DRIM-M network on one machine); with the simulators, "
                             "box-a publishes the demo exams of drimbox demo once and box-b's launch pages are printed")
    parser.add_argument("--postgresql", action="store_true",
                        help="keep the box's store and Orthanc's index in a private PostgreSQL (started here)")
    parser.add_argument("--nodes", type=int, default=1,
                        help="Orthanc nodes per box behind its one nginx, sharing PostgreSQL and the DICOM storage "
                             "(needs --postgresql)")
    parser.add_argument("--log-max-mb", type=int, default=50,
                        help="rotate each log (Orthanc, nginx, simulators) past this size, keeping 5 copies")
    parser.add_argument("--free-ports", action="store_true", help="use free loopback ports instead of the fixed ones")
    parser.add_argument("--no-demo-exams", action="store_true",
                        help="with --two-boxes: do not publish the demo exams")
    parser.set_defaults(func=run)


def run(args) -> int:
    from drimbox.launcher.network import LocalNetwork
    from drimbox.launcher.ports import BoxPorts, SimulatorPorts
    from drimbox.launcher.processes import ProcessError

    names = ("box-a", "box-b") if args.two_boxes else ("box-a",)
    if args.nodes < 1 or (args.nodes > 1 and not args.postgresql):
        print("drimbox run: --nodes N (N >= 2) needs --postgresql: SQLite cannot be shared between nodes")
        return 2
    network = LocalNetwork(args.data_dir or default_data_dir(), box_names=names,
                           simulators=not args.no_simulators, stable_age=args.stable_age,
                           postgresql=args.postgresql, nodes=args.nodes, log_max_mb=args.log_max_mb)
    if args.free_ports:
        network.box_ports = {name: BoxPorts.free() for name in names}
        network.sim_ports = SimulatorPorts.free()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        network.start()
    except ProcessError as error:
        print(f"drimbox run: {error}")
        return 1
    print(network.describe(), flush=True)
    if args.two_boxes and not args.no_simulators and not args.no_demo_exams:
        from drimbox.cli.demo_consumer import ensure_demo_exams

        print(flush=True)
        if not ensure_demo_exams(network, network.data_dir, lambda text: print(f"-> {text}", flush=True)):
            print("drimbox run: the demo exams were not all published (see above); the boxes keep running.")
    print("\nRunning. Ctrl-C stops every process started here.", flush=True)
    try:
        while not stop.is_set():
            stop.wait(1.0)
            dead = [b.name for b in network.boxes.values()
                    if not (all(o.running for o in b.orthancs) and b.nginx and b.nginx.running)]
            dead += [p.name for p in network.processes if not p.running]
            if dead:
                print(f"drimbox run: {', '.join(dead)} stopped unexpectedly; see the logs. Stopping.")
                return 1
    finally:
        print("Stopping...", flush=True)
        network.stop()
        print("Stopped.", flush=True)
    return 0
