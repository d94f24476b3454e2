"""``ssl-ser jobs {logs,status,stop,list}``: follow and control jobs submitted to a Ray cluster."""

from __future__ import annotations

import argparse
import time

HELP = "show the logs or status of, stop, or list jobs on a Ray cluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    address = argparse.ArgumentParser(add_help=False)
    address.add_argument("--address", help="the head node's dashboard, e.g. http://HEAD:8265 "
                                           "(default: $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS)")
    logs = sub.add_parser("logs", parents=[address], help="print a job's logs")
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep streaming until the job ends; exit 1 unless it succeeded")
    status = sub.add_parser("status", parents=[address], help="a job's status and details")
    status.add_argument("job_id")
    stop = sub.add_parser("stop", parents=[address], help="stop a running job")
    stop.add_argument("job_id")
    stop.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                      help="wait up to this long for the job to end and print its final status")
    sub.add_parser("list", parents=[address], help="every job on the cluster, oldest first")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.train import submit as jobs

    client = jobs.connect(args.address)
    if args.action == "logs":
        if not args.follow:
            print(jobs.job_logs(client, args.job_id), end="")
            return 0
        final = jobs.follow_logs(client, args.job_id, lambda chunk: print(chunk, end="", flush=True))
        print(f"[ssl-ser] job {args.job_id} {final}")
        return 0 if final == "SUCCEEDED" else 1
    if args.action == "status":
        info = jobs.job_status(client, args.job_id)
        print(f"{info['job_id']}: {info['status']}" + (f" ({info['message']})" if info["message"] else ""))
        print(f"  entrypoint: {info['entrypoint']}")
        print(f"  started:    {_when(info['start_time'])}")
        if info["end_time"]:
            print(f"  ended:      {_when(info['end_time'])}")
        for key, value in sorted(info["metadata"].items()):
            print(f"  {key}: {value}")
        return 0
    if args.action == "stop":
        if not jobs.stop_job(client, args.job_id):
            status = jobs.job_status(client, args.job_id)["status"]
            print(f"job {args.job_id} had already ended: {status}")
            return 0
        print(f"stop requested for job {args.job_id}")
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            status = jobs.job_status(client, args.job_id)["status"]
            if status in ("STOPPED", "SUCCEEDED", "FAILED"):
                print(f"job {args.job_id} {status}")
                return 0
            time.sleep(0.5)
        return 0
    rows = jobs.list_jobs(client)
    if not rows:
        print("no jobs")
    for row in rows:
        print(f"{row['job_id']:32s} {row['status']:10s} {_when(row['start_time'])}  "
              f"{row['name'] or '-':20s} {row['entrypoint']}")
    return 0


def _when(millis: int | None) -> str:
    """Ray reports times in milliseconds since the epoch."""
    if not millis:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis / 1000))
