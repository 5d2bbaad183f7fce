"""bench_aws_observe: observe N owned EC2 instances on a real moto_server and print what it cost.

Observing pages ``DescribeInstances`` 1000 instances at a time, so N instances should cost
ceil(N / 1000) listing calls and nothing else; the benchmark fails (exit 1) if they do not.
The instances are made straight through boto3, one reservation each (moto counts a page in
reservations, EC2 in instances), with only the tags observe needs — moto's tag filter scans
every tag it holds, so making them is the slow part (about a minute for 1,500 on 2 cores).

    python bench/bench_aws_observe.py              # 1,500 instances: two pages
    python bench/bench_aws_observe.py --servers 2500
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.core.model import TAG_KEY, TAG_OWNER  # noqa: E402
from tests.aws.factory import OWNER, make_provider  # noqa: E402
from tests.aws.motoserver import AMI, isolated_aws_env, start_moto_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=4, help="parallel RunInstances calls while setting up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-aws-") as tmp:
        home = Path(tmp)
        os.environ.update(isolated_aws_env(home))
        moto = start_moto_server(home / "moto")
        try:
            ec2 = moto.client()

            def run(ordinal: int) -> None:
                tags = [{"Key": TAG_OWNER, "Value": OWNER}, {"Key": TAG_KEY, "Value": f"big/node/{ordinal}"}]
                ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])

            started = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(run, range(args.servers)))
            setup = time.perf_counter() - started

            provider = make_provider(moto.url, home / "state")
            started = time.perf_counter()
            observed = provider.observe(OWNER)
            seconds = time.perf_counter() - started
            provider.close()
        finally:
            moto.stop()
    expected = math.ceil(args.servers / 1000)
    print(f"bench_aws_observe: {args.servers} owned instances on moto_server (set up in {setup:.1f} s)")
    print("servers observed  seconds  DescribeInstances  other calls")
    other = provider.total_calls - provider.calls["DescribeInstances"]
    print(f"{len(observed):16d}  {seconds:7.2f}  {provider.calls['DescribeInstances']:17d}  {other:11d}")
    distinct = len({s.resource_id for s in observed})
    if len(observed) != args.servers or distinct != args.servers or provider.total_calls != expected:
        print(f"FAILED: expected {args.servers} distinct servers in {expected} calls", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
