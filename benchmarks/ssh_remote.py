"""DVC push and pull throughput to an SSH remote on loopback: OpenSSH's sshd with
throwaway keys (tests/sshd.py, the server of tests/test_ssh_remote.py), a project baked
with an ssh:// remote, --size-mb of incompressible seeded random bytes in --files files
`dvc add`ed as one folder, `dvc push`, the cache and the folder deleted, `dvc pull`, and
every pulled file's md5 checked against the written one. Prints one table: seconds and
MB/s (MiB) for add (hash and copy into the cache), push and pull. Progress on stderr.

    .venv/bin/python benchmarks/ssh_remote.py [--size-mb 1024] [--files 10]

Needs Debian's openssh-server (`make bench` installs it when run as root).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from scale import TEMPLATE, Run, bake, machine, progress, run, table

sys.path.insert(0, str(TEMPLATE / "tests"))
from sshd import Unavailable, serve  # noqa: E402  (tests/ is not a package)

HEADER = ("step", "seconds", "MB/s", "note")
RIGHT = (False, True, True, False)
MIB = 2**20


def write_files(folder: Path, size_mb: int, files: int) -> dict[str, str]:
    """`files` files of random bytes (seeded), `size_mb` MiB in all; their md5s by name."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    written = {}
    for i in range(files):
        path = folder / f"part-{i:03d}.bin"
        with path.open("wb") as out:
            for _ in range(size_mb // files + (i < size_mb % files)):
                out.write(rng.bytes(MIB))
        written[path.name] = md5(path)
    return written


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def timed_row(step: str, result: Run, megabytes: int, note: str = "") -> tuple[str, ...]:
    if result.status != "ok":
        return (step, f"{result.status} at {result.seconds:.1f}", "-", result.failure()[1])
    return (step, f"{result.seconds:.1f}", f"{megabytes / result.seconds:.0f}", note)


def measure(tmp: Path, size_mb: int, files: int, timeout: float) -> list[tuple[str, ...]]:
    with ExitStack() as stack:
        server = stack.enter_context(serve(tmp / "keys"))
        store = tmp / "store"
        url = f"ssh://{getpass.getuser()}@127.0.0.1:{server.port}{store}"
        progress(f"bake with the DVC remote {url}")
        _, root, _ = bake(tmp, f"dvc_remote_url={url}")
        keyfile = run(root, "dvc", "remote", "modify", "--local", "storage", "keyfile",
                      str(server.key))  # fmt: skip
        if keyfile.status != "ok":
            raise RuntimeError(f"dvc remote modify: {keyfile.failure()[1]}")
        progress(f"writing {size_mb} MiB of random bytes in {files} files")
        written = write_files(root / "blob", size_mb, files)
        rows = []
        progress("dvc add blob")
        added = run(root, "dvc", "add", "blob", timeout=timeout)
        rows.append(timed_row("dvc add (hash, copy into the cache)", added, size_mb))
        progress("dvc push blob.dvc")
        pushed = run(root, "dvc", "push", "blob.dvc", timeout=timeout)
        stored = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        rows.append(timed_row("dvc push", pushed, size_mb, f"{stored / MIB:.0f} MiB in the store"))
        shutil.rmtree(root / ".dvc" / "cache")
        shutil.rmtree(root / "blob")
        progress("dvc pull blob.dvc (cache and files deleted)")
        pulled = run(root, "dvc", "pull", "blob.dvc", timeout=timeout)
        back = {p.name: md5(p) for p in (root / "blob").iterdir()} if pulled.status == "ok" else {}
        same = back == written
        check = f"md5 of all {files} files equal" if same else "md5 DIFFERS from the written"
        rows.append(timed_row("dvc pull (fetch, checkout)", pulled, size_mb, check))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB in all")
    parser.add_argument("--files", type=int, default=10, help="files in the tracked folder")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command")
    args = parser.parse_args()
    progress(machine())
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rows = measure(Path(tmp), args.size_mb, args.files, args.timeout)
        except Unavailable as exc:
            sys.exit(f"ssh_remote: not measured: {exc}")
    print(machine())
    print(f"DVC SSH remote on loopback (OpenSSH sshd), {args.files} files")
    print(table(rows, HEADER, RIGHT), flush=True)


if __name__ == "__main__":
    main()
