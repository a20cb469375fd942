"""Run needle commands on one bundle in this process, each with its stdout and stderr
caught at the file-descriptor level (forked workers included), under resource limits:
what a user would have seen, as JSON on stdout. Used by test_corpus.py, one child
process per corpus case.

    python drive.py LIMIT_MIB CPU_SECONDS ARGV_JSON...
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import traceback


def limit(memory_mib: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mib << 20, memory_mib << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))


def run_one(argv: list[str]) -> dict[str, object]:
    from needle.cli import run

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        escaped = None
        started = time.monotonic()
        try:
            code = run(argv, "needle")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - what escaped is the finding
            escaped = traceback.format_exc()
            code = None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        took = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return {
            "argv": argv,
            "exit": code,
            "stdout": out.read().decode("utf-8", "backslashreplace"),
            "stderr": err.read().decode("utf-8", "backslashreplace"),
            "seconds": round(took, 3),
            "escaped": escaped,
        }


def main() -> None:
    memory_mib, cpu_s = int(sys.argv[1]), int(sys.argv[2])
    limit(memory_mib, cpu_s)
    os.environ["NO_COLOR"] = "1"
    os.environ.pop("FORCE_COLOR", None)
    results = [run_one(json.loads(arg)) for arg in sys.argv[3:]]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    sys.stdout.write(
        json.dumps({"results": results, "peak_mib": max(peak_mib, children_mib)}) + "\n"
    )


if __name__ == "__main__":
    main()
