#!/usr/bin/env python3
"""Bad-input harness for the `cairn` binary: what was tried, and how it is handled.

Feeds the release binary several hundred damaged, hostile or impossible inputs and records, for
each, how the command ended. Its output is the table in docs/bad-input.md.

Categories (one function each below):

- npy:       damaged `.npy` files for `aggregate --input`, `attack --input`, `aggregate --previous`
             and `attack --stale` (truncations, bad magic/version/header/dtype/shape, NaN rows,
             float64 beyond float32, empty, directory, missing, FIFO, 1 TiB sparse files).
- dataset:   damaged `digits.csv.gz` (and `mnist_5k`, Fashion-MNIST IDX) in a `--data-dir` given to
             `train` and `simulate` (truncated gzip, garbage, wrong columns, bad labels, bombs).
- scenario:  scenario TOML for `simulate --print-scenario --scenario F` (malformed, unknown keys,
             wrong types, zero/huge counts, bad probabilities and plans), and the impossible plans
             given as flags to a real `simulate` run, which must be refused before it starts.
- flags:     out-of-range flag values of `train`, `aggregate`, `attack` and `ledger`.
- ledger:    a demo ledger damaged on disk (empty, truncated, ~30 single-byte flips, first 64
             bytes overwritten, directory, missing), read by `ledger inspect|prove|verify`; a read
             must never change the file.
- ledger-killed: `ledger demo` killed with SIGKILL after 0-250 ms, then `ledger inspect`.
- outputs:   `train --save/--json`, `aggregate --output`, `attack --output`, `simulate --timing/
             --out` onto a symlink, a FIFO, a directory, a missing folder, an input (also through a
             hard link and a symlinked folder).

Each case declares what it expects ("error", "ok", or "error or same output" for byte flips, where
a flip in unused space may be read back unchanged). The outcome is classified automatically:

- `clear error`:   nonzero exit, non-empty stderr without "panicked" or "RUST_BACKTRACE";
- `unclear error`: nonzero exit with an empty stderr or a backtrace hint;
- `panic`:         stderr contains "panicked" or the exit code is 101;
- `crash`:         killed by a signal (e.g. an allocation beyond the memory limit aborts);
- `hang`:          no exit within the timeout (60 s; 20 s for FIFO inputs and 30 s for the
                   one-second simulations, so that a hang costs little of the run time);
- `accepted`:      exit code 0;
- `input changed`: a file the command was given (or a link target, FIFO, folder) changed.

`names_it` says whether a clear error contains every needle the case lists: usually the flag (or
scenario field) and the path of the file involved. An outcome that differs from the expected one,
or a case whose extra checks fail (stdout written before a refusal, leftover files, a refused run
that produced output), is listed as unexpected.

Children run with RUST_BACKTRACE, RUST_LIB_BACKTRACE, RUST_LOG, CAIRN_DATA_DIR and
CAIRN_FASHION_MNIST_DIR unset, in a fresh temporary folder (removed at the end), with an address
space limit of 8 GiB so that a runaway allocation crashes the child instead of the machine.

Usage (Python 3 standard library only; build the binary first):

    cargo build --release -p cairn-cli
    python3 bench/bad_input.py [--cairn target/release/cairn] [--out bench/results]

Writes OUT/bad_input.csv (one row per case) and OUT/bad_input.md (summary per category and every
unexpected outcome), and prints the summary. Exit status 1 when any outcome is unexpected.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60.0
MEMORY_LIMIT = 8 << 30
BIG_FILE = 64 << 20  # files above this are fingerprinted by size, mtime and their ends
UNSET_ENV = (
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "CAIRN_DATA_DIR",
    "CAIRN_FASHION_MNIST_DIR",
)

# A needle is a string, or a tuple of alternatives of which one must appear.
Needle = Union[str, tuple]


@dataclass
class Case:
    """One command to run, what it should do, and what must not change."""

    category: str
    name: str
    args: list
    expected: str = "error"  # "error" | "ok" | "error or same output"
    watch: list = field(default_factory=list)  # paths that must be unchanged afterwards
    names: list = field(default_factory=list)  # needles a clear error should contain
    setup: Optional[Callable[[], None]] = None  # builds the inputs just before the run
    cleanup: Optional[Callable[[], None]] = None  # removes them afterwards
    check: Optional[Callable[["Run"], list]] = None  # extra checks: list of problems
    same_output: Optional[str] = None  # for "error or same output": the reference stdout
    output_dir: Optional[Path] = None  # replaced by $DIR in stdout before comparing
    timeout: float = TIMEOUT_S
    why: str = ""  # why the expected outcome is the right one, where that is not obvious


@dataclass
class Run:
    """What one command did."""

    exit_code: Optional[int]  # None on timeout; negative when killed by a signal
    seconds: float
    stdout: str
    stderr: str
    timed_out: bool


@dataclass
class Row:
    """One line of the results table."""

    category: str
    case: str
    command: str
    expected: str
    outcome: str
    names_it: str
    input_unchanged: bool
    exit_code: str
    seconds: float
    stderr_first_line: str
    stderr_cause: str
    note: str
    unexpected: bool
    stderr: str = ""


# --------------------------------------------------------------------------------------------
# Running and classifying


class Harness:
    """Runs cases against one binary inside one temporary folder."""

    def __init__(self, cairn: Path, tmp: Path):
        self.cairn = cairn
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
        self.rows: list[Row] = []
        self.counter = 0

    def folder(self, label: str) -> Path:
        """A new empty folder for one case."""
        self.counter += 1
        path = self.tmp / f"{self.counter:04d}-{label}"
        path.mkdir(parents=True)
        return path

    def execute(self, args: Sequence[str], timeout: float = TIMEOUT_S) -> Run:
        """Runs `cairn args` with the cleaned environment and the memory limit."""

        def limit_memory() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

        started = time.monotonic()
        child = subprocess.Popen(
            [str(self.cairn), *args],
            cwd=self.tmp,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit_memory,
            start_new_session=True,
        )
        try:
            out, err = child.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
            timed_out = True
        return Run(
            exit_code=None if timed_out else child.returncode,
            seconds=time.monotonic() - started,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            timed_out=timed_out,
        )

    def display(self, args: Sequence[str]) -> str:
        """The command as a shell line, with the temporary folder shown as $TMP."""
        text = shlex.join(["cairn", *args])
        return text.replace(str(self.tmp), "$TMP")

    def run(self, case: Case) -> Row:
        """Runs one case and records its row."""
        if case.setup:
            case.setup()
        before = [fingerprint(Path(p)) for p in case.watch]
        run = self.execute(case.args, case.timeout)
        after = [fingerprint(Path(p)) for p in case.watch]
        changed = [str(p) for p, a, b in zip(case.watch, before, after) if a != b]
        problems = case.check(run) if case.check else []
        row = self.record(case, run, changed, problems)
        if case.cleanup:
            case.cleanup()
        return row

    def record(self, case: Case, run: Run, changed: list, problems: list) -> Row:
        outcome = classify(run, changed)
        names_it = ""
        if case.names and outcome == "clear error":
            names_it = "yes" if all(contains(run.stderr, n) for n in case.names) else "no"
        stdout = run.stdout
        if case.output_dir is not None:
            stdout = stdout.replace(str(case.output_dir), "$DIR")
        notes = ([case.why] if case.why else []) + list(problems)
        if changed:
            notes.append("changed: " + ", ".join(changed))
        matched = expected_matches(case, outcome, stdout, notes)
        row = Row(
            category=case.category,
            case=case.name,
            command=self.display(case.args),
            expected=case.expected,
            outcome=outcome,
            names_it=names_it,
            input_unchanged=not changed,
            exit_code="timeout" if run.timed_out else str(run.exit_code),
            seconds=round(run.seconds, 3),
            stderr_first_line=self.clip(first_line(run.stderr)),
            stderr_cause=self.clip(root_cause(run.stderr)),
            note=self.clip("; ".join(notes), 300),
            unexpected=not matched or bool(problems),
            stderr=run.stderr.replace(str(self.tmp), "$TMP"),
        )
        self.rows.append(row)
        return row

    def clip(self, text: str, limit: int = 160) -> str:
        text = text.replace(str(self.tmp), "$TMP")
        return text if len(text) <= limit else text[: limit - 3] + "..."


def classify(run: Run, changed: list) -> str:
    """The outcome class of one run (see the module docstring)."""
    if run.timed_out:
        return "hang"
    if "panicked" in run.stderr or run.exit_code == 101:
        return "panic"
    if run.exit_code is not None and run.exit_code < 0:
        return f"crash ({signal.Signals(-run.exit_code).name})"
    if changed:
        return "input changed"
    if run.exit_code != 0:
        if run.stderr.strip() and "RUST_BACKTRACE" not in run.stderr:
            return "clear error"
        return "unclear error"
    return "accepted"


def expected_matches(case: Case, outcome: str, stdout: str, notes: list) -> bool:
    if case.expected == "error":
        return outcome == "clear error"
    if case.expected == "ok":
        return outcome == "accepted"
    if case.expected == "waits":
        if outcome == "hang":
            notes.append("waits for a writer, as cat does (by design)")
            return True
        return False
    if case.expected == "error or same output":
        if outcome == "clear error":
            return True
        if outcome == "accepted":
            if stdout == case.same_output:
                notes.append("read back the same output as the undamaged file")
                return True
            notes.append("accepted with an output that differs from the undamaged file's")
        return False
    raise ValueError(case.expected)


def contains(text: str, needle: Needle) -> bool:
    if isinstance(needle, tuple):
        return any(n in text for n in needle)
    return needle in text


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def root_cause(text: str) -> str:
    """The innermost cause of an anyhow report (its text after "Caused by:"), on one line."""
    if "Caused by:" not in text:
        return ""
    causes = text.split("Caused by:", 1)[1].strip().splitlines()
    last = []
    for line in causes:
        # Numbered causes ("0: ...", "1: ...") start anew; continuation lines join the current one.
        stripped = line.strip()
        if stripped[:2].rstrip(":").isdigit() and stripped[1:3].startswith(":"):
            last = [stripped.split(":", 1)[1].strip()]
        elif stripped:
            last.append(stripped)
    return " ".join(last)


def fingerprint(path: Path, depth: int = 0):
    """What a path is and holds, cheaply enough for a 1 TiB sparse file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return ("missing",)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        resolved = path.parent / target
        return ("link", target, fingerprint(resolved, depth + 1) if depth < 3 else None)
    if stat.S_ISDIR(info.st_mode):
        if depth >= 3:
            return ("dir", tuple(sorted(os.listdir(path))))
        return (
            "dir",
            tuple((n, fingerprint(path / n, depth + 1)) for n in sorted(os.listdir(path))),
        )
    if stat.S_ISFIFO(info.st_mode):
        return ("fifo",)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            if info.st_size <= BIG_FILE:
                digest.update(handle.read())
                return ("file", info.st_size, digest.hexdigest())
            digest.update(handle.read(1 << 20))
            handle.seek(info.st_size - (1 << 20))
            digest.update(handle.read())
        return ("big file", info.st_size, info.st_mtime_ns, digest.hexdigest())
    return ("other", stat.S_IFMT(info.st_mode))


def new_entries(folder: Path, before: set) -> list:
    return sorted(set(os.listdir(folder)) - before)


# --------------------------------------------------------------------------------------------
# Building files


NPY_MAGIC = b"\x93NUMPY"


def f32(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def f64(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def shape_text(shape: Sequence[int]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def npy_header(descr: str = "<f4", shape: Sequence[int] = (6, 3), fortran: bool = False) -> str:
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape_text(shape)}, }}"


def npy(
    header: Union[str, bytes, None] = None,
    data: bytes = b"",
    version: tuple = (1, 0),
    declared_len: Optional[int] = None,
    magic: bytes = NPY_MAGIC,
) -> bytes:
    """The bytes of a .npy file; the header is padded to 64 bytes as NumPy does."""
    if header is None:
        header = npy_header()
    body = header.encode("utf-8") if isinstance(header, str) else header
    length_bytes = 2 if version[0] == 1 else 4
    used = len(magic) + 2 + length_bytes + len(body) + 1
    body += b" " * ((-used) % 64) + b"\n"
    length = len(body) if declared_len is None else declared_len
    packed = struct.pack("<H" if length_bytes == 2 else "<I", length)
    return magic + bytes(version) + packed + body + data


UPDATES = [1.0 + 0.1 * i for i in range(18)]  # six updates of dimension 3
VALID_UPDATES = npy(npy_header("<f4", (6, 3)), f32(UPDATES))
VALID_VECTOR = npy(npy_header("<f4", (3,)), f32([0.5, 0.5, 0.5]))


def with_row(values: list, row: int, value: float) -> list:
    out = list(values)
    out[row * 3 : row * 3 + 3] = [value] * 3
    return out


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def digits_rows(count: int = 60) -> list:
    """Valid digits CSV lines (64 features in 0-16, then a label 0-9), six per class."""
    rows = []
    for i in range(count):
        pixels = [(i * 7 + j * 3) % 17 for j in range(64)]
        rows.append(",".join(map(str, pixels + [i % 10])))
    return rows


def csv_text(rows: list) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def idx_images(count: int, rows: int = 28, cols: int = 28, magic: int = 0x0803) -> bytes:
    header = struct.pack(">IIII", magic, count, rows, cols)
    return header + bytes((i * 31) % 256 for i in range(count * rows * cols))


def idx_labels(count: int, magic: int = 0x0801, top: int = 10) -> bytes:
    return struct.pack(">II", magic, count) + bytes(i % top for i in range(count))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# Category 1: .npy inputs


def npy_variants() -> list:
    """(name, bytes or special kind, expected) for a file standing for six 3-d updates."""
    valid = VALID_UPDATES
    out = [
        ("valid float32 (control)", valid, "ok"),
        ("valid version 2.0 (control)", npy(data=f32(UPDATES), version=(2, 0)), "ok"),
        ("valid version 3.0 (control)", npy(data=f32(UPDATES), version=(3, 0)), "ok"),
        ("valid float64 (control)", npy(npy_header("<f8"), f64(UPDATES)), "ok"),
    ]
    for length in (1, 5, 6, 7, 8, 9, 10, 11, 40, 127, 128, 129, len(valid) - 4, len(valid) - 1):
        out.append((f"truncated to {length} of {len(valid)} bytes", valid[:length], "error"))
    out += [
        ("empty file", b"", "error"),
        ("wrong magic \\x93NUMPZ", b"\x93NUMPZ" + valid[6:], "error"),
        ("magic without \\x93", b"NUMPY!" + valid[6:], "error"),
        ("a zip file", b"PK\x03\x04" + b"\0" * 60, "error"),
        ("a CSV text", b"1,2,3\n4,5,6\n", "error"),
    ]
    for version in ((0, 0), (1, 1), (4, 0), (255, 255)):
        out.append((f"version {version[0]}.{version[1]}", valid[:6] + bytes(version) + valid[8:], "error"))
    out += [
        ("header length 10001 (over the limit)", npy(npy_header() + " " * 10000, f32(UPDATES)), "error"),
        ("header length 65535 declared, file short", npy(data=f32(UPDATES), declared_len=65535), "error"),
        ("v2 header length 4 GiB declared", npy(data=f32(UPDATES), version=(2, 0), declared_len=0xFFFFFFFF), "error"),
        ("header length 0", npy(data=f32(UPDATES), declared_len=0), "error"),
    ]
    malformed = {
        "header is not a dict": "hello",
        "unterminated dict": "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3)",
        "missing 'shape'": "{'descr': '<f4', 'fortran_order': False, }",
        "missing 'descr'": "{'fortran_order': False, 'shape': (6, 3), }",
        "missing 'fortran_order'": "{'descr': '<f4', 'shape': (6, 3), }",
        "extra key": "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3), 'x': 1, }",
        "duplicate key": "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (6, 3), }",
        "shape is a string": "{'descr': '<f4', 'fortran_order': False, 'shape': '(6, 3)', }",
        "negative shape": "{'descr': '<f4', 'fortran_order': False, 'shape': (-6, -3), }",
        "float in shape": "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3.0), }",
        "shape as a list": "{'descr': '<f4', 'fortran_order': False, 'shape': [6, 3], }",
        "fortran_order is a string": "{'descr': '<f4', 'fortran_order': 'False', 'shape': (6, 3), }",
        "structured dtype": "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6, 3), }",
        "nested dict": "{'descr': {'a': 1}, 'fortran_order': False, 'shape': (6, 3), }",
        "unquoted descr": "{'descr': <f4, 'fortran_order': False, 'shape': (6, 3), }",
    }
    for name, header in malformed.items():
        out.append((f"malformed header: {name}", npy(header, f32(UPDATES)), "error"))
    out.append(("non-ASCII header (v1.0)", npy(npy_header().replace("descr", "dés") , f32(UPDATES)), "error"))
    out.append(("invalid UTF-8 header (v3.0)", npy(npy_header().encode() + b"\xff\xfe", f32(UPDATES), version=(3, 0)), "error"))
    for descr, size in (("<i4", 4), (">f4", 4), ("|b1", 1), ("<f2", 2), ("<c8", 8), (">f8", 8), ("|u1", 1), ("|O", 8), ("<U1", 4)):
        out.append((f"dtype {descr}", npy(npy_header(descr), b"\0" * (18 * size)), "error"))
    out += [
        ("fortran order", npy(npy_header(fortran=True), f32(UPDATES)), "error"),
        ("rank 0", npy(npy_header(shape=()), f32([1.0])), "error"),
        ("rank 3", npy(npy_header(shape=(3, 3, 2)), f32(UPDATES)), "error"),
        ("shape product overflows u64", npy(npy_header(shape=(2**62, 2**62)), f32(UPDATES)), "error"),
        ("shape beyond u64", npy(npy_header(shape=(2**64, 1)), f32(UPDATES)), "error"),
        ("bytes overflow (2^62 elements)", npy(npy_header(shape=(2**62,)), f32(UPDATES)), "error"),
        ("data one element short", npy(data=f32(UPDATES[:-1])), "error"),
        ("data one element long", npy(data=f32(UPDATES + [1.0])), "error"),
        ("data one byte long", npy(data=f32(UPDATES) + b"\0"), "error"),
        ("no rows: shape (0, 3)", npy(npy_header(shape=(0, 3))), "error"),
        ("float64 1e39 (beyond float32)", npy(npy_header("<f8"), f64(UPDATES[:-1] + [1e39])), "error"),
        ("float64 -1e39 (beyond float32)", npy(npy_header("<f8"), f64([-1e39] + UPDATES[1:])), "error"),
        ("float64 1e308", npy(npy_header("<f8"), f64(UPDATES[:-1] + [1e308])), "error"),
        ("1 TiB sparse file, not npy", "sparse", "error"),
        ("1 TiB sparse file behind a valid header", "sparse-npy", "error"),
        ("a directory", "dir", "error"),
        ("a missing file", "missing", "error"),
        # Opening a FIFO waits for a writer, as `cat` does: waiting for input is not refusing
        # bad input, and a writer that comes later must still be read.
        ("a FIFO with no writer", "fifo", "waits"),
        ("a FIFO fed a valid file (as `<(...)` gives)", "fifo-fed", "ok"),
    ]
    return out


def make_input(path: Path, content) -> None:
    """Creates `path` as the variant says: bytes, or a special kind of file."""
    if isinstance(content, bytes):
        write(path, content)
    elif content == "sparse":
        with open(path, "wb") as handle:
            handle.truncate(1 << 40)
    elif content == "sparse-npy":
        head = npy(npy_header(shape=(2, 2)))
        write(path, head)
        os.truncate(path, len(head) + (1 << 40))
    elif content == "dir":
        path.mkdir()
    elif content == "missing":
        pass
    elif content in ("fifo", "fifo-fed"):
        os.mkfifo(path)
    else:
        raise ValueError(content)


def npy_cases(h: Harness) -> list:
    cases = []
    # Every variant as the updates of aggregate; a sample as the updates of attack.
    attack_sample = {
        "valid float32 (control)", "truncated to 9 of 200 bytes", "truncated to 129 of 200 bytes",
        "wrong magic \\x93NUMPZ", "version 4.0", "header length 10001 (over the limit)",
        "malformed header: missing 'shape'", "dtype <i4", "dtype >f4", "dtype |b1",
        "fortran order", "rank 0", "rank 3", "shape product overflows u64", "data one element short",
        "data one element long", "float64 1e39 (beyond float32)", "empty file",
        "1 TiB sparse file, not npy", "a directory", "a missing file", "no rows: shape (0, 3)",
    }
    for name, content, expected in npy_variants():
        for command in ("aggregate", "attack"):
            if command == "attack" and name not in attack_sample:
                continue
            cases.append(npy_case(h, command, "--input", name, content, expected))
    # NaN and infinite rows: refused by default, dropped on request.
    for label, value in (("NaN", float("nan")), ("+inf", float("inf")), ("-inf", float("-inf"))):
        data = npy(data=f32(with_row(UPDATES, 2, value)))
        cases.append(npy_case(h, "aggregate", "--input", f"a {label} row", data, "error"))
        cases.append(npy_case(h, "aggregate", "--input", f"a {label} row, --non-finite drop", data, "ok",
                              extra=["--non-finite", "drop"]))
    one_nan = UPDATES[:4] + [float("nan")] + UPDATES[5:]
    cases.append(npy_case(h, "aggregate", "--input", "one NaN coordinate", npy(data=f32(one_nan)), "error"))
    all_nan = npy(data=f32([float("nan")] * 18))
    cases.append(npy_case(h, "aggregate", "--input", "every row NaN, --non-finite drop", all_nan, "error",
                          extra=["--non-finite", "drop"]))
    f64_inf = npy(npy_header("<f8"), f64(with_row(UPDATES, 1, float("inf"))))
    cases.append(npy_case(h, "aggregate", "--input", "float64 inf row (non-finite, default policy)", f64_inf, "error"))
    cases.append(npy_case(h, "attack", "--input", "a NaN row in the honest updates",
                          npy(data=f32(with_row(UPDATES, 2, float("nan")))), "error"))
    cases.append(npy_case(h, "aggregate", "--input", "1-D array where (n, d) is needed", VALID_VECTOR, "error"))
    # --previous of centered clipping, a (d,) vector.
    previous = [
        ("valid (control)", VALID_VECTOR, "ok"),
        ("truncated to 9 bytes", VALID_VECTOR[:9], "error"),
        ("truncated by 2 bytes", VALID_VECTOR[:-2], "error"),
        ("empty file", b"", "error"),
        ("garbage", b"PK\x03\x04 a zip, not numpy", "error"),
        ("dtype <i4", npy(npy_header("<i4", (3,)), b"\0" * 12), "error"),
        ("wrong dimension (4,)", npy(npy_header(shape=(4,)), f32([0.5] * 4)), "error"),
        ("a NaN coordinate", npy(npy_header(shape=(3,)), f32([0.5, float("nan"), 0.5])), "error"),
        ("float64 1e39", npy(npy_header("<f8", (3,)), f64([0.5, 1e39, 0.5])), "error"),
        ("a directory", "dir", "error"),
        ("a missing file", "missing", "error"),
        ("1 TiB sparse file", "sparse", "error"),
    ]
    for name, content, expected in previous:
        cases.append(npy_case(h, "aggregate", "--previous", name, content, expected))
    stale = [
        ("valid (control)", VALID_VECTOR, "ok"),
        ("garbage", b"not numpy at all", "error"),
        ("wrong dimension (4,)", npy(npy_header(shape=(4,)), f32([0.5] * 4)), "error"),
        ("truncated to 20 bytes", VALID_VECTOR[:20], "error"),
        ("a missing file", "missing", "error"),
    ]
    for name, content, expected in stale:
        cases.append(npy_case(h, "attack", "--stale", name, content, expected))
    return cases


def feed_fifo(path: Path, data: bytes) -> None:
    """Writes `data` into the FIFO at `path` once a reader opens it (as a shell pipe would)."""
    try:
        with open(path, "wb") as pipe:
            pipe.write(data)
    except (BrokenPipeError, OSError):
        pass


def npy_case(h: Harness, command: str, flag: str, name: str, content, expected: str,
             extra: Sequence[str] = ()) -> Case:
    folder = h.folder("npy")
    subject = folder / "bad.npy"  # the file under test
    updates = subject if flag == "--input" else folder / "updates.npy"
    out = folder / "out.npy"
    if command == "aggregate":
        args = ["aggregate", "--input", str(updates), "--output", str(out)]
        if flag == "--previous":
            args += ["--rule", "centered_clipping", "--previous", str(subject)]
    else:
        kind = "stale" if flag == "--stale" else "ipm"
        args = ["attack", "--kind", kind, "--f", "1", "--input", str(updates), "--output", str(out)]
        if flag == "--stale":
            args += ["--stale", str(subject)]
    args += list(extra)

    feeder: list = []

    def setup() -> None:
        make_input(subject, content)
        if updates != subject:
            write(updates, VALID_UPDATES)
        if content == "fifo-fed":
            feeder.append(threading.Thread(target=feed_fifo, args=(subject, VALID_UPDATES)))
            feeder[0].start()

    def cleanup() -> None:
        if feeder:
            # A writer still waiting for a reader is released by opening the FIFO once.
            os.close(os.open(subject, os.O_RDONLY | os.O_NONBLOCK))
            feeder[0].join(5)
        shutil.rmtree(folder)

    def check(run: Run) -> list:
        problems = []
        if expected == "error" and out.exists():
            problems.append("an output was written although the command failed")
        if expected == "ok" and run.exit_code == 0 and not out.is_file():
            problems.append("exit 0 but no output file")
        leftovers = [n for n in os.listdir(folder) if n not in ("bad.npy", "updates.npy", "out.npy")]
        if leftovers:
            problems.append("leftover files: " + ", ".join(leftovers))
        return problems

    return Case(
        category="npy",
        name=f"{command} {flag}: {name}",
        args=args,
        expected=expected,
        watch=[subject] + ([updates] if updates != subject else []),
        names=[flag, str(subject)],
        setup=setup,
        check=check,
        cleanup=cleanup,
        # A FIFO with no writer blocks a plain open(); give it less than the default.
        timeout=5 if content == "fifo" else 20 if content == "fifo-fed" else TIMEOUT_S,
    )


# --------------------------------------------------------------------------------------------
# Category 2: datasets


def dataset_cases(h: Harness, data: Path) -> list:
    shipped = (data / "digits.csv.gz").read_bytes()
    rows = digits_rows()
    plain = csv_text(rows)
    bad_row = lambda replacement: csv_text(rows[:7] + [replacement] + rows[8:])  # noqa: E731
    pixels = ",".join(["1"] * 64)
    bomb_member = gzip_bytes(b"0," * (1 << 19))  # 1 MiB of "0," per gzip member
    variants = [
        ("shipped file (control)", shipped, "ok"),
        ("plain CSV under the .gz name (control)", plain, "ok"),
        ("CRLF line ends (control)", plain.replace(b"\n", b"\r\n"), "ok"),
        ("truncated gzip: 10 bytes", shipped[:10], "error"),
        ("truncated gzip: 100 bytes", shipped[:100], "error"),
        ("truncated gzip: half", shipped[: len(shipped) // 2], "error"),
        ("truncated gzip: CRC trailer cut", shipped[:-6], "error"),
        ("truncated gzip: last byte cut", shipped[:-1], "error"),
        ("gzip with a flipped byte in the middle", flip(shipped, len(shipped) // 2), "error"),
        ("gzip magic then garbage", b"\x1f\x8b" + bytes(range(256)) * 4, "error"),
        ("binary garbage", bytes((i * 37 + 11) % 256 for i in range(4096)), "error"),
        ("empty file", b"", "error"),
        ("gzip of nothing", gzip_bytes(b""), "error"),
        ("only blank lines", b"\n\n  \n", "error"),
        ("a header line", csv_text([",".join(f"p{i}" for i in range(64)) + ",label"] + rows), "error"),
        ("row of 64 columns", gzip_bytes(bad_row(pixels)), "error"),
        ("row of 66 columns", gzip_bytes(bad_row(pixels + ",1,1")), "error"),
        ("every row 785 columns (MNIST width)", gzip_bytes(csv_text([",".join(["0"] * 784) + ",1"] * 20)), "error"),
        ("non-numeric label", gzip_bytes(bad_row(pixels + ",x")), "error"),
        ("fractional label 1.5", gzip_bytes(bad_row(pixels + ",1.5")), "error"),
        ("negative label -1", gzip_bytes(bad_row(pixels + ",-1")), "error"),
        ("label 10 (10 classes)", gzip_bytes(bad_row(pixels + ",10")), "error"),
        ("label 99999999999", gzip_bytes(bad_row(pixels + ",99999999999")), "error"),
        ("empty label", gzip_bytes(bad_row(pixels + ",")), "error"),
        ("feature 17 (max 16)", gzip_bytes(bad_row("17," + ",".join(["1"] * 63) + ",3")), "error"),
        ("feature -1", gzip_bytes(bad_row("-1," + ",".join(["1"] * 63) + ",3")), "error"),
        ("feature nan", gzip_bytes(bad_row("nan," + ",".join(["1"] * 63) + ",3")), "error"),
        ("feature inf", gzip_bytes(bad_row("inf," + ",".join(["1"] * 63) + ",3")), "error"),
        ("empty feature", gzip_bytes(bad_row("," + ",".join(["1"] * 63) + ",3")), "error"),
        ("quoted feature", gzip_bytes(bad_row('"1",' + ",".join(["1"] * 63) + ",3")), "error"),
        ("one row only", gzip_bytes(csv_text(rows[:1])), "error"),
        ("gzip bomb: 520 MiB decompressed (limit 512 MiB)", bomb_member * 520, "error"),
    ]
    cases = []
    for name, content, expected in variants:
        cases.append(dataset_case(h, "train", f"digits.csv.gz: {name}", content, expected))
    for name, content, expected in variants:
        if name in ("truncated gzip: half", "label 10 (10 classes)", "binary garbage", "empty file",
                    "shipped file (control)"):
            cases.append(dataset_case(h, "simulate", f"digits.csv.gz: {name}", content, expected))
    for special in ("a directory", "a missing file", "a symlink to /dev/zero"):
        cases.append(dataset_case(h, "train", f"digits.csv.gz: {special}", special, "error"))
    cases.append(dataset_case(h, "train", "mnist_5k.csv.gz holding the digits file", shipped, "error",
                              dataset="mnist_5k"))
    cases += fashion_cases(h)
    return cases


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def dataset_case(h: Harness, command: str, name: str, content, expected: str,
                 dataset: str = "digits") -> Case:
    folder = h.folder("dataset")
    data_dir = folder / "data"
    target = data_dir / f"{dataset}.csv.gz"
    if command == "train":
        args = ["train", "--dataset", dataset, "--data-dir", str(data_dir), "--epochs", "1",
                "--hidden", "8"]
    else:
        args = overriding(SIM_CHEAP, ["--dataset", dataset, "--data-dir", str(data_dir), "--out",
                                      str(folder / "report")])

    def setup() -> None:
        data_dir.mkdir()
        if isinstance(content, bytes):
            write(target, content)
        elif content == "a directory":
            target.mkdir()
        elif content == "a symlink to /dev/zero":
            target.symlink_to("/dev/zero")
        if dataset != "digits":
            # The binary looks for digits.csv.gz to find a data folder; keep one there.
            write(data_dir / "digits.csv.gz", gzip_bytes(csv_text(digits_rows())))

    return Case(
        category="dataset",
        name=f"{command}: {name}",
        args=args,
        expected=expected,
        watch=[target],
        names=[str(target)],
        setup=setup,
        cleanup=lambda: shutil.rmtree(folder),
    )


def fashion_cases(h: Harness) -> list:
    """Fashion-MNIST IDX files in DATA/fashion-mnist (the binary tries that folder first)."""
    train_n, test_n = 40, 20
    files = {
        "train-images-idx3-ubyte": idx_images(train_n),
        "train-labels-idx1-ubyte": idx_labels(train_n),
        "t10k-images-idx3-ubyte": idx_images(test_n),
        "t10k-labels-idx1-ubyte": idx_labels(test_n),
    }
    variants = [
        ("valid small files (control)", {}, "ok"),
        ("images: wrong magic", {"train-images-idx3-ubyte": idx_images(train_n, magic=0x0801)}, "error"),
        ("images: truncated data", {"train-images-idx3-ubyte": idx_images(train_n)[:-100]}, "error"),
        ("images: header only", {"train-images-idx3-ubyte": idx_images(train_n)[:16]}, "error"),
        ("images: 7 bytes", {"train-images-idx3-ubyte": idx_images(train_n)[:7]}, "error"),
        ("images: side 0", {"train-images-idx3-ubyte": idx_images(0, 0, 28)}, "error"),
        ("images: 8x8 instead of 28x28", {"train-images-idx3-ubyte": idx_images(train_n, 8, 8)}, "error"),
        ("images: header claims 4e9 images", {"train-images-idx3-ubyte": struct.pack(">IIII", 0x0803, 0xFFFFFFFF, 28, 28)}, "error"),
        ("images: trailing bytes", {"train-images-idx3-ubyte": idx_images(train_n) + b"\0" * 10}, "error"),
        ("labels: count differs from images", {"train-labels-idx1-ubyte": idx_labels(train_n - 1)}, "error"),
        ("labels: label 10", {"t10k-labels-idx1-ubyte": idx_labels(test_n, top=11)}, "error"),
        ("labels: wrong magic", {"t10k-labels-idx1-ubyte": idx_labels(test_n, magic=0x0803)}, "error"),
        ("labels: truncated gzip", {"t10k-labels-idx1-ubyte": gzip_bytes(idx_labels(test_n))[:-9]}, "error"),
    ]
    cases = []
    for name, replace, expected in variants:
        folder = h.folder("fashion")
        data_dir = folder / "data"
        fashion = data_dir / "fashion-mnist"
        content = {**files, **replace}
        bad = [fashion / n for n in replace] or [fashion / "train-images-idx3-ubyte"]

        def setup(fashion=fashion, content=content, data_dir=data_dir) -> None:
            write(data_dir / "digits.csv.gz", gzip_bytes(csv_text(digits_rows())))
            for file_name, data in content.items():
                write(fashion / file_name, data)

        cases.append(Case(
            category="dataset",
            name=f"train: fashion_mnist {name}",
            args=["train", "--dataset", "fashion_mnist", "--data-dir", str(data_dir), "--model",
                  "logistic", "--epochs", "1"],
            expected=expected,
            watch=[fashion],
            names=[str(bad[0])],
            setup=setup,
            cleanup=lambda folder=folder: shutil.rmtree(folder),
        ))
    return cases


# --------------------------------------------------------------------------------------------
# Category 3: scenarios

# A simulation small enough to finish in a second if a bad plan is not refused.
SIM_CHEAP = ["simulate", "--dataset", "digits", "--rounds", "1", "--local-steps", "2", "--trainers", "4",
             "--attackers", "0", "--rule", "mean"]


def overriding(base: list, flags: Sequence[str]) -> list:
    """`base` without the flags (and their values) that `flags` sets again."""
    given = {f for f in flags if f.startswith("--")}
    out, skip = [], False
    for word in base:
        if skip:
            skip = False
            continue
        if word in given:
            skip = True
            continue
        out.append(word)
    return out + list(flags)


def scenario_texts() -> list:
    """(name, TOML text, expected, needle) for `simulate --print-scenario --scenario F`."""
    t = []
    ok = lambda name, text, why="": t.append((name, text, "ok", why))  # noqa: E731
    bad = lambda name, text, needle=None: t.append((name, text, "error", needle))  # noqa: E731
    ok("empty file (control: every default)", "")
    ok("only comments (control)", "# nothing\n")
    ok("a small valid plan (control)", 'dataset = "digits"\nrounds = 2\nrule = "median"\n')
    # Malformed TOML.
    bad("missing value", "rounds = \n")
    bad("unclosed table header", "[windows\ncommit = 5\n")
    bad("duplicate key", "rounds = 1\nrounds = 2\n", "rounds")
    bad("unterminated string", 'rule = "median\n')
    bad("binary garbage", "\x00\x01\x02\xff")
    bad("invalid UTF-8", b"rule = \"\xff\xfe\"\n")
    bad("a JSON document", '{"rounds": 5}\n')
    bad("table redefined", "[windows]\ncommit = 5\n[windows]\nreveal = 5\n", "windows")
    # Unknown keys.
    bad("unknown top-level key", "roudns = 5\n", "roudns")
    bad("unknown key in [windows]", "[windows]\ncomit = 5\n", "comit")
    bad("unknown key in [verification]", "[verification]\naudit = 0.1\n", "audit")
    bad("unknown key in [[trainers]]", "[[trainers]]\ncnt = 2\n", "cnt")
    bad("unknown key in [[validators]]", "[[validators]]\ncount = 4\nweight = 1\n", "weight")
    bad("unknown key in [network]", "[network]\nlatency = 5\n", "latency")
    bad("unknown table", "[consensus]\nx = 1\n", "consensus")
    # Wrong types.
    for key, value in (("rounds", '"5"'), ("rounds", "5.5"), ("rounds", "true"), ("seed", "-1"),
                       ("seed", '"x"'), ("dataset", "5"), ("trainers", "5"), ("validators", '"x"'),
                       ("optimizer", "1"), ("rule", "[1]"), ("threads", "-2"), ("batch_size", "1e3")):
        bad(f"{key} = {value}", f"{key} = {value}\n", key)
    bad("success_rate as a string", '[network]\nsuccess_rate = "1"\n', "success_rate")
    bad("stake negative", "[[trainers]]\ncount = 10\nstake = -5\n", "stake")
    # Zero and negative counts.
    for key in ("rounds", "local_steps", "batch_size", "threads"):
        bad(f"{key} = 0", f"{key} = 0\n", key)
    bad("rounds = -1", "rounds = -1\n", "rounds")
    bad("a trainer group of 0", "[[trainers]]\ncount = 0\n", "count")
    bad("no trainers at all", "trainers = []\n", "trainers")
    bad("no validators at all", "validators = []\n", "validators")
    bad("validators count 0", "[[validators]]\ncount = 0\n", "count")
    for key in ("commit", "reveal", "attest"):
        bad(f"windows.{key} = 0", f"[windows]\n{key} = 0\n", key)
    for key in ("trace_every", "audit_window", "move_window"):
        bad(f"verification.{key} = 0", f"[verification]\n{key} = 0\n", key)
    bad("trainer stake 0", "[[trainers]]\ncount = 10\nstake = 0\n", "stake")
    bad("validator stake 0", "[[validators]]\ncount = 4\nstake = 0\n", "stake")
    # Huge counts.
    bad("rounds = 4294967295", "rounds = 4294967295\n", "rounds")
    bad("rounds = 2^40 (beyond u32)", "rounds = 1099511627776\n", "rounds")
    bad("local_steps = 4294967295", "local_steps = 4294967295\n", "local_steps")
    bad("batch_size = 4294967295", "batch_size = 4294967295\n", "batch_size")
    bad("threads = 1000000", "threads = 1000000\n", "threads")
    bad("trainer count 4294967295", "[[trainers]]\ncount = 4294967295\n", "count")
    bad("validator count 1000000", "[[validators]]\ncount = 1000000\n", "count")
    bad("1000 trainer groups of 1000", "".join("[[trainers]]\ncount = 1000\n" for _ in range(1000)), "trainers")
    bad("sybil identities 1000000000",
        '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 1\nbehaviour = "sybil"\nidentities = 1000000000\nattack = "alie"\n',
        "identities")
    bad("integer beyond i64", "seed = 99999999999999999999\n", "seed")
    bad("windows.commit = 2^62", "[windows]\ncommit = 4611686018427387904\n", "commit")
    bad("latency_ms = 2^62", "[network]\nlatency_ms = 4611686018427387904\n", "latency_ms")
    ok("reward 2^63-1 a round", "reward_per_round = 9223372036854775807\n",
       "token amounts are u128: 4 such rounds pay 3.7e19 and the balances add up")
    bad("latency_ms = 10^9 (11 days a message)", "[network]\nlatency_ms = 1000000000\n", "latency_ms")
    bad("partition healing after 10^12 ms",
        '[[network.partitions]]\nat_ms = 0\nheal_ms = 1000000000000\ngroups = [["v0", "v1"], ["v2", "v3"]]\n',
        "heal_ms")
    # Probabilities and real numbers out of range.
    for value in ("1.5", "-0.1", "nan", "inf"):
        bad(f"success_rate = {value}", f"[network]\nsuccess_rate = {value}\n", "success_rate")
    for value in ("2.0", "-1.0", "nan"):
        bad(f"audit_rate = {value}", f"[verification]\naudit_rate = {value}\n", "audit_rate")
    ok("success_rate = 0 (nothing arrives)", "[network]\nsuccess_rate = 0.0\n",
       "a network that loses everything is a legitimate experiment; the run then fails at once")
    lazy = '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 2\nbehaviour = "lazy"\nlazy = "steps"\n'
    bad("lazy fraction 1.5", lazy + "fraction = 1.5\n", "fraction")
    bad("lazy fraction nan", lazy + "fraction = nan\n", "fraction")
    scaled = '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 2\nbehaviour = "scaled"\n'
    bad("scaled factor nan", scaled + "factor = nan\n", "factor")
    bad("scaled factor inf", scaled + "factor = inf\n", "factor")
    noise = '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 1\nbehaviour = "noise_sybil"\nidentities = 2\n'
    bad("noise_sybil noise nan", noise + "noise = nan\n", "noise")
    bad("noise_sybil noise -1", noise + "noise = -1.0\n", "noise")
    # Bad strings and impossible plans.
    for rule in ("krum:100", "nope", "", "nnm:2>", ">median", "trimmed_mean:-1", "krum:x",
                 "median>median", "bucketing:0>median", "weighted_mean:1,2"):
        bad(f"rule {rule!r}", f'rule = "{rule}"\n', ("rule", rule or "empty"))
    for partition in ("dirichlet:0", "dirichlet:-1", "dirichlet:nan", "dirichlet:inf", "shards:0",
                      "shards:100000", "random", ""):
        bad(f"partition {partition!r}", f'partition = "{partition}"\n', ("partition", partition or "empty"))
    ok("optimizer 'sgd:lr=0'", 'optimizer = "sgd:lr=0"\n', "lr 0 is a valid no-op, as in PyTorch and `train --lr 0`")
    for optimizer in ("sgd:lr=nan", "sgd:lr=-1", "sgd:lr=inf", "sgd:momentum=1.5",
                      "adagrad", "sgd:lr=", "sgd:foo=1"):
        bad(f"optimizer {optimizer!r}", f'optimizer = "{optimizer}"\n', ("optimizer", "lr", "momentum", optimizer))
    ok("model 'mlp:784-64-11'", 'model = "mlp:784-64-11"\n',
       "more outputs than classes is allowed by design (ml::model checks classes <= outputs)")
    for model in ("mlp:3-3", "mlp:784-0-10", "mlp:64-64-10", "mlp:", "resnet",
                  "mlp:784-100000000-10"):
        bad(f"model {model!r}", f'model = "{model}"\n', ("model", model or "empty"))
    for dataset in ("fashion_mnist", "cifar", ""):
        bad(f"dataset {dataset!r}", f'dataset = "{dataset}"\n', "dataset")
    bad("data_dir does not exist", 'data_dir = "/nonexistent/cairn-data"\n', "/nonexistent/cairn-data")
    bad("unknown trainer behaviour", '[[trainers]]\ncount = 10\nbehaviour = "evil"\n', "evil")
    bad("unknown attack", '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 2\nbehaviour = "attack"\nattack = "nope"\n', "nope")
    bad("attack group without an attack",
        '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 2\nbehaviour = "attack"\nattack = ""\n', "attack")
    bad("copier of a missing victim",
        '[[trainers]]\ncount = 8\n[[trainers]]\ncount = 1\nbehaviour = "copier"\nvictim = "t99"\n', "t99")
    bad("byzantine validators a third",
        '[[validators]]\ncount = 2\n[[validators]]\ncount = 1\nbehaviour = "silent"\n', "third")
    bad("crash of an unknown node", '[[network.crashes]]\nnode = "x9"\nat_ms = 100\n', "x9")
    bad("restart before crash", '[[network.crashes]]\nnode = "v3"\nat_ms = 1000\nrestart_ms = 10\n', "restart_ms")
    bad("partition heals before it starts",
        '[[network.partitions]]\nat_ms = 2000\nheal_ms = 1000\ngroups = [["v0"], ["v1"]]\n', "heal_ms")
    bad("partition of an unknown node",
        '[[network.partitions]]\nat_ms = 1\nheal_ms = 2\ngroups = [["zz"], ["v1"]]\n', "zz")
    return t


def scenario_cases(h: Harness, data: Path) -> list:
    cases = []
    for name, text, expected, needle in scenario_texts():
        folder = h.folder("scenario")
        path = folder / "scenario.toml"
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        write(path, raw)
        # --data-dir on the command line would override the file's own data_dir.
        data_flag = [] if b"data_dir" in raw else ["--data-dir", str(data)]
        cases.append(Case(
            category="scenario",
            name=f"--scenario: {name}",
            args=["simulate", "--print-scenario", *data_flag, "--scenario", str(path)],
            expected=expected,
            watch=[path],
            names=([needle] if needle else [str(path)]) if expected == "error" else [],
            check=refused_plan_prints_nothing(expected),
            why=needle if expected == "ok" else "",
        ))
    # The impossible plans as flags: with --print-scenario, then as a real (cheap) run.
    plans = [
        (["--rule", "krum:100"], "krum"),
        (["--partition", "dirichlet:0"], "dirichlet"),
        (["--partition", "dirichlet:-1"], "dirichlet"),
        (["--partition", "shards:100000"], "shards"),
        (["--model", "mlp:3-3"], "model"),
        (["--attackers", "11"], "--attackers"),
        (["--trainers", "0"], "--trainers"),
        (["--validators", "0"], "--validators"),
        (["--audit-rate", "1.5"], ("--audit-rate", "audit_rate")),
        (["--audit-rate", "nan"], ("--audit-rate", "audit_rate")),
        (["--threads", "0"], ("--threads", "threads")),
        (["--attack", "nope"], "nope"),
        (["--dataset", "fashion_mnist"], "fashion_mnist"),
    ]
    for flags, needle in plans:
        cases.append(Case(
            category="scenario",
            name=f"flags {' '.join(flags)} --print-scenario",
            args=["simulate", "--print-scenario", "--data-dir", str(data), *flags],
            names=[needle],
            check=refused_plan_prints_nothing("error"),
        ))
    files = h.folder("scenario")
    nan_lr = write(files / "nan-lr.toml", b'optimizer = "sgd:lr=nan"\n')
    real_runs = [(flags, needle, " ".join(flags)) for flags, needle in plans]
    real_runs.append((["--scenario", str(nan_lr)], "lr", "--scenario with sgd:lr=nan"))
    # Plans that --print-scenario accepts: how does a real run end? (A run that cannot finish
    # should end at once, with an error, not after hours.)
    network = [
        ("success_rate = 0", "[network]\nsuccess_rate = 0.0\n", 50),
        ("latency_ms = 10^9", "[network]\nlatency_ms = 1000000000\n", 10**9),
        ("latency_ms = 2^62", "[network]\nlatency_ms = 4611686018427387904\n", 2**62),
        ("partition healing after 10^12 ms",
         '[[network.partitions]]\nat_ms = 0\nheal_ms = 1000000000000\ngroups = [["v0", "v1"], ["v2", "v3"]]\n',
         50),
    ]
    for index, (label, text, latency_ms) in enumerate(network):
        folder = h.folder("scenario-run")
        path = write(files / f"network-{index}.toml", text.encode())
        cases.append(Case(
            category="scenario",
            name=f"--scenario with {label} (a real run, which --print-scenario accepts)",
            args=SIM_CHEAP + ["--data-dir", str(data), "--out", str(folder / "report"),
                              "--scenario", str(path)],
            check=ends_soon_with_a_sane_limit(latency_ms),
            timeout=30,
        ))
    for flags, needle, label in real_runs:
        folder = h.folder("scenario-run")
        report = folder / "report"
        base = SIM_CHEAP + ["--data-dir", str(data), "--out", str(report)]
        if flags[0] == "--attack":
            flags = ["--attackers", "2", *flags]  # the cheap run has no attacker to use it
        cases.append(Case(
            category="scenario",
            name=f"{label} (a real run)",
            args=overriding(base, flags),
            names=[needle],
            check=refused_before_running(report),
            # A cheap run takes under a second; 30 s is a hang.
            timeout=30,
        ))
    return cases


def refused_plan_prints_nothing(expected: str) -> Callable[[Run], list]:
    def check(run: Run) -> list:
        if expected == "error" and run.exit_code != 0 and run.stdout.strip():
            return ["a refused plan printed a scenario"]
        return []

    return check


def ends_soon_with_a_sane_limit(latency_ms: int) -> Callable[[Run], list]:
    """A run that cannot finish must say so soon, and its time limit must make sense."""

    def check(run: Run) -> list:
        problems = []
        found = re.search(r"within (\d+) s of simulated time", run.stderr)
        if found and int(found.group(1)) * 1000 < latency_ms:
            problems.append(f"the simulated-time limit ({found.group(1)} s) is shorter than one "
                            f"message's latency ({latency_ms} ms): its arithmetic overflowed")
        return problems

    return check


def refused_before_running(report: Path) -> Callable[[Run], list]:
    def check(run: Run) -> list:
        problems = []
        if run.exit_code != 0 and report.exists():
            problems.append("the refused run created its report folder")
        if run.exit_code != 0 and run.stdout.strip():
            problems.append("refused after the run started: " + first_line(run.stdout)[:80])
        if run.seconds > 5:
            problems.append(f"refusal took {run.seconds:.1f} s")
        return problems

    return check


# --------------------------------------------------------------------------------------------
# Category: flag values


def flag_cases(h: Harness, data: Path) -> list:
    folder = h.folder("flags")
    updates = write(folder / "updates.npy", VALID_UPDATES)
    out = folder / "out.npy"
    ledger = folder / "ledger"
    train = ["train", "--data-dir", str(data), "--epochs", "1", "--hidden", "8"]
    aggregate = ["aggregate", "--input", str(updates), "--output", str(out)]
    attack = ["attack", "--input", str(updates), "--output", str(out)]
    plain = [
        (train + ["--lr", "nan"], "--lr"),
        (train + ["--lr=-0.5"], "--lr"),
        (train + ["--lr", "inf"], "--lr"),
        (train[:-4] + ["--epochs", "0"], "--epochs"),
        (train + ["--batch-size", "0"], "--batch-size"),
        (train + ["--dropout", "1.5", "--model", "cnn"], "--dropout"),
        (train + ["--momentum", "1"], "--momentum"),
        (train + ["--weight-decay", "nan"], "--weight-decay"),
        (train[:-2] + ["--hidden", "0"], "--hidden"),
        (train[:-2] + ["--hidden", "8,,8"], "--hidden"),
        (train[:-2] + ["--hidden", "100000000,100000000"], "--hidden"),
        (train + ["--threads", "0"], "--threads"),
        (train + ["--threads", "100000"], "--threads"),
        (train + ["--dataset", "cifar"], "--dataset"),
        (aggregate + ["--rule", "krum", "--f", "5"], "krum"),
        (aggregate + ["--rule", "krum:x"], "krum:x"),
        (aggregate + ["--rule", "bulyan:1"], "bulyan"),
        (aggregate + ["--rule", "weighted_mean:1,2"], "weighted_mean"),
        (aggregate + ["--rule", "weighted_mean:1,1,1,1,1,nan"], "weighted_mean"),
        (aggregate + ["--pre", "bucketing:0"], "bucketing"),
        (aggregate + ["--pre", "clip:-1"], "clip"),
        (aggregate + ["--rule", "centered_clipping", "--tau", "nan"], ("--tau", "tau")),
        (aggregate + ["--rule", "geometric_median", "--nu=-1"], ("--nu", "nu =")),
        (aggregate + ["--rule", "geometric_median", "--iterations", "0"], ("--iterations", "iterations")),
        (aggregate + ["--rule", "monna", "--reference", "99"], ("--reference", "reference")),
        (aggregate + ["--rule", "multi_krum", "--m", "0"], ("--m", "m =")),
        (aggregate + ["--non-finite", "ignore"], "--non-finite"),
        (attack + ["--kind", "nope", "--f", "1"], "nope"),

        (attack + ["--kind", "alie", "--f", "1", "--n", "1"], ("--n", "n =")),
        (attack + ["--kind", "mimic:99", "--f", "1"], "mimic"),
        (attack + ["--kind", "stale", "--f", "1"], "--stale"),
        (attack + ["--kind", "alie", "--f", "4000000000"], "--f"),
        (["ledger", "genesis", "--data-dir", str(folder / "g1"), "--accounts", "0"], "--accounts"),
        (["ledger", "genesis", "--data-dir", str(folder / "g2"), "--accounts", "4000000000"], "--accounts"),
        (["ledger", "prove", "--data-dir", str(ledger), "--task", "0", "--round", "1", "--expect", "xyz"], "--expect"),
        (["ledger", "prove", "--data-dir", str(ledger), "--task", "0", "--round", "1", "--expect", "00" * 32], "--expect"),
        (["ledger", "demo", "--data-dir", str(ledger)], str(ledger)),
        (["ledger", "genesis", "--data-dir", str(ledger)], str(ledger)),
    ]
    made = []

    def make_ledger() -> None:
        if not made:
            result = h.execute(["ledger", "demo", "--data-dir", str(ledger)])
            if result.exit_code != 0:
                raise SystemExit("cannot make the reference ledger: " + result.stderr)
            made.append(True)

    accepted = [
        (attack + ["--kind", "alie", "--f", "0"], "crafts an empty (0, d) array, as asked"),
        (["ledger", "prove", "--data-dir", str(ledger), "--task", "99", "--round", "0"],
         "a verified proof that task 99 has no finalized model (absence is provable)"),
        (["ledger", "prove", "--data-dir", str(ledger), "--task", "0", "--round", "99"],
         "a verified proof that round 99 has no finalized model"),
    ]
    cases = []
    for args, needle in plain:
        cases.append(Case(
            category="flags",
            name=describe_flags(args, h.tmp),
            args=args,
            watch=[updates, ledger],
            names=[needle],
            setup=make_ledger,
            check=no_output_written(out),
        ))
    for args, why in accepted:
        cases.append(Case(
            category="flags",
            name=describe_flags(args, h.tmp),
            args=args,
            expected="ok",
            watch=[updates, ledger],
            setup=make_ledger,
            check=no_output_written(out),
            why=why,
        ))
    return cases


def describe_flags(args: list, tmp: Path) -> str:
    """The flags that make a flag case bad, without the shared plumbing."""
    skip_values = {"--data-dir", "--input", "--output"}
    words, skip = [args[0]] + ([args[1]] if args[0] == "ledger" else []), False
    for word in args[1:] if args[0] != "ledger" else args[2:]:
        if skip:
            skip = False
            continue
        if word in skip_values:
            skip = True
            continue
        words.append(word)
    return " ".join(words).replace(str(tmp), "$TMP")


def no_output_written(out: Path) -> Callable[[Run], list]:
    def check(run: Run) -> list:
        if run.exit_code != 0 and out.exists():
            out.unlink()
            return ["an output was written although the command failed"]
        if out.exists():
            out.unlink()
        return []

    return check


# --------------------------------------------------------------------------------------------
# Category 4: ledger files


def ledger_cases(h: Harness) -> list:
    reference = h.folder("ledger-ref") / "chain"
    made = h.execute(["ledger", "demo", "--data-dir", str(reference)])
    if made.exit_code != 0:
        raise SystemExit("cannot make the reference ledger: " + made.stderr)
    pristine = (reference / "ledger.redb").read_bytes()
    size = len(pristine)
    commands = {
        "inspect": lambda d: ["ledger", "inspect", "--data-dir", str(d)],
        "prove": lambda d: ["ledger", "prove", "--data-dir", str(d), "--task", "0", "--round", "1"],
        "verify": lambda d: ["ledger", "verify", "--data-dir", str(d)],
    }
    expected_out = {}
    for name, command in commands.items():
        result = h.execute(command(reference))
        if result.exit_code != 0:
            raise SystemExit(f"ledger {name} fails on the undamaged ledger: {result.stderr}")
        expected_out[name] = result.stdout.replace(str(reference), "$DIR")

    damage: list = [
        ("0-byte ledger.redb", lambda: b"", "error"),
        ("first 64 bytes overwritten", lambda: b"\xab" * 64 + pristine[64:], "error"),
        ("ledger.redb is a directory", "dir", "error"),
        ("missing data directory", "missing", "error"),
        ("data directory without ledger.redb", "empty", "error"),
        ("ledger.redb is a FIFO", "fifo", "error"),
    ]
    for length in (1, 64, 512, 4096, 8192, size // 4, size // 2, size - 4096, size - 1):
        damage.append((f"truncated to {length} of {size} bytes",
                       lambda length=length: pristine[:length], "error"))
    # The file is mostly unused space: a flip there cannot be noticed. So besides the header and
    # four offsets spread evenly over the file, flip bytes inside pages that hold data.
    offsets = [(o, "header") for o in (0, 9, 16, 32, 64, 100, 511, 4124)]
    offsets += [(size * (i + 1) // 5, "spread evenly") for i in range(4)]
    page = 4096
    used = [p for p in range(page, size, page) if any(pristine[p : p + page])]
    for i in range(18):
        start = used[i * len(used) // 18]
        nonzero = [start + j for j, b in enumerate(pristine[start : start + page]) if b]
        offsets.append((nonzero[len(nonzero) // 2], f"in a used page ({len(used)} of {size // page})"))
    for offset, where in offsets:
        damage.append((f"byte {offset} flipped, {where}",
                       lambda offset=offset: flip(pristine, offset), "error or same output"))

    cases = []
    for name, content, expected in damage:
        for command_name, command in commands.items():
            folder = h.folder("ledger")
            chain = folder / "chain"
            store = chain / "ledger.redb"

            def setup(chain=chain, store=store, content=content) -> None:
                if content == "missing":
                    return
                chain.mkdir()
                if content == "dir":
                    store.mkdir()
                elif content == "fifo":
                    os.mkfifo(store)
                elif content == "empty":
                    pass
                else:
                    store.write_bytes(content())

            cases.append(Case(
                category="ledger",
                name=f"{command_name}: {name}",
                args=command(chain),
                expected=expected,
                watch=[chain],
                names=[(str(chain), str(store))],
                setup=setup,
                cleanup=lambda folder=folder: shutil.rmtree(folder),
                same_output=expected_out[command_name],
                output_dir=chain,
                timeout=20 if content == "fifo" else TIMEOUT_S,
            ))
    return cases


def killed_demo_rows(h: Harness) -> None:
    """`ledger demo` killed part-way, then `ledger inspect`: no ledger, or a valid one."""
    delays_ms = list(range(0, 60, 5)) + [100, 150, 200, 250]
    for delay in delays_ms:
        folder = h.folder("killed")
        chain = folder / "chain"
        started = time.monotonic()
        child = subprocess.Popen(
            [str(h.cairn), "ledger", "demo", "--data-dir", str(chain)],
            cwd=h.tmp, env=h.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay / 1000)
        child.kill()
        code = child.wait()
        finished = code == 0
        left = sorted(os.listdir(chain)) if chain.is_dir() else None
        before = fingerprint(chain)
        inspect = h.execute(["ledger", "inspect", "--data-dir", str(chain)])
        changed = [str(chain)] if fingerprint(chain) != before else []
        notes = ["demo finished before the kill" if finished else f"killed after {delay} ms"]
        notes.append("left: " + (", ".join(left) if left else "nothing") if left is not None
                     else "left: no data directory")
        problems = []
        if inspect.exit_code == 0:
            verify = h.execute(["ledger", "verify", "--data-dir", str(chain)])
            height = first_line(inspect.stdout)
            notes.append(f"valid ledger ({height[:60]})" if verify.exit_code == 0
                         else "inspect reads it but verify fails: " + first_line(verify.stderr))
            if verify.exit_code != 0:
                problems.append("a ledger that inspect reads fails verify")
            expected = "ok"
        else:
            expected = "error"
            if "no ledger" not in inspect.stderr:
                problems.append("inspect failed with something other than 'no ledger'")
            again = h.execute(["ledger", "demo", "--data-dir", str(chain)])
            notes.append("demo in the same folder afterwards: " +
                         ("succeeds" if again.exit_code == 0 else "refused: " + first_line(again.stderr)))
            if again.exit_code != 0 and classify(again, []) != "clear error":
                problems.append("a second demo in the folder " + classify(again, []))
        case = Case(
            category="ledger-killed",
            name=f"demo SIGKILLed after {delay} ms, then inspect",
            args=["ledger", "inspect", "--data-dir", str(chain)],
            expected=expected,
            names=[(str(chain), "ledger.redb")],
        )
        inspect.seconds = time.monotonic() - started
        row = h.record(case, inspect, changed, problems)
        row.expected = "no ledger, or a valid one"
        row.note = h.clip("; ".join(notes + problems), 300)
        shutil.rmtree(folder)


# --------------------------------------------------------------------------------------------
# Category 5: output paths


def output_cases(h: Harness, data: Path) -> list:
    """Every output flag onto paths it must refuse; the refusal must come before the work."""
    cases = []
    for command in ("train --save", "train --json", "aggregate --output", "attack --output",
                    "simulate --timing", "simulate --out"):
        for target in ("symlink to a file", "FIFO", "directory", "missing folder", "same file as an input",
                       "hard link to an input", "input through a symlinked folder"):
            cases.append(output_case(h, data, command, target))
    return cases


def output_case(h: Harness, data: Path, command: str, target: str) -> Case:
    folder = h.folder("output")
    inputs = folder / "inputs"
    program, flag = command.split()
    precious = folder / "precious.txt"
    # The input that "same file" cases collide with, and the command's arguments.
    if program == "train":
        dataset = inputs / "digits.csv.gz"
        config = inputs / "run.toml"
        collide = dataset if flag == "--save" else config
        base = ["train", "--config", str(config), "--data-dir", str(inputs), "--epochs", "1", "--hidden", "8"]
    elif program in ("aggregate", "attack"):
        collide = inputs / "updates.npy"
        base = (["aggregate"] if program == "aggregate" else ["attack", "--kind", "ipm", "--f", "1"])
        base += ["--input", str(collide)]
    else:
        collide = inputs / "scenario.toml"
        base = SIM_CHEAP + ["--data-dir", str(data), "--scenario", str(collide)]
        if flag == "--timing":
            base += ["--out", str(folder / "report")]

    expected = "error"
    watch: list = [inputs]
    out_folder_case = program == "simulate" and flag == "--out"
    if target == "symlink to a file":
        path = folder / "link"
        watch.append(path)
    elif target == "FIFO":
        path = folder / "fifo"
        watch.append(path)
    elif target == "directory":
        path = folder / "existing"
        watch.append(path)
        # A report folder is the normal --out; its other files must stay.
        expected = "ok" if out_folder_case else "error"
    elif target == "missing folder":
        path = folder / "no" / "such" / ("report" if out_folder_case else "out.file")
        if not out_folder_case:
            watch.append(folder / "no")
        else:
            expected = "ok"  # --out is documented as created
    elif target == "same file as an input":
        path = inputs if out_folder_case else collide
    elif target == "hard link to an input":
        path = folder / "linked" if out_folder_case else folder / "hard.link"
    else:  # through a symlinked folder
        path = folder / "alias" if out_folder_case else folder / "alias" / collide.name

    def setup() -> None:
        inputs.mkdir()
        if program == "train":
            shutil.copy(data / "digits.csv.gz", inputs / "digits.csv.gz")
            write(inputs / "run.toml", b"epochs = 1\nhidden = [8]\n")
        elif program in ("aggregate", "attack"):
            write(inputs / "updates.npy", VALID_UPDATES)
        else:
            write(inputs / "scenario.toml", b"rounds = 1\n")
        write(precious, b"not to be overwritten\n")
        if target == "symlink to a file":
            path.symlink_to(precious)
        elif target == "FIFO":
            os.mkfifo(path)
        elif target == "directory":
            path.mkdir()
            write(path / "keep.txt", b"keep me\n")
        elif target == "hard link to an input":
            if out_folder_case:
                path.mkdir()
                os.link(collide, path / "scenario.toml")
            else:
                os.link(collide, path)
        elif target == "input through a symlinked folder":
            (folder / "alias").symlink_to(inputs, target_is_directory=True)
        entries_before.update(os.listdir(folder))

    entries_before: set = set()
    args = base + [flag, str(path)]

    def check(run: Run) -> list:
        problems = []
        if expected == "error" and run.exit_code != 0 and run.stdout.strip():
            problems.append("refused after the work: stdout " + first_line(run.stdout)[:60])
        if expected == "error" and run.seconds > 5:
            problems.append(f"refusal took {run.seconds:.1f} s")
        extra = new_entries(folder, entries_before)
        if expected == "error" and extra:
            problems.append("new files beside the output: " + ", ".join(extra))
        return problems

    if program == "simulate" and flag == "--out" and target == "directory":
        watch = [inputs, path / "keep.txt"]
    return Case(
        category="outputs",
        name=f"{command} onto: {target}",
        args=args,
        expected=expected,
        watch=watch + [precious],
        names=[flag, str(path)] if expected == "error" else [],
        setup=setup,
        check=check,
        cleanup=lambda: shutil.rmtree(folder),
        timeout=20 if target == "FIFO" else TIMEOUT_S,
    )


# --------------------------------------------------------------------------------------------
# Report


COLUMNS = ["category", "case", "command", "expected", "outcome", "names_it", "input_unchanged",
           "exit_code", "seconds", "stderr_first_line", "stderr_cause", "note"]


def write_csv(rows: list, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([getattr(row, c) for c in COLUMNS])


def summary(rows: list, seconds: float, cairn: Path) -> str:
    categories: dict = {}
    for row in rows:
        categories.setdefault(row.category, []).append(row)
    lines = [
        "# Bad-input harness results",
        "",
        f"`python3 bench/bad_input.py` against `{cairn}`: {len(rows)} cases in {seconds:.0f} s.",
        "",
        "| category | cases | clear errors | naming the file/field | panics | hangs | accepted as expected "
        "| unexpected | inputs changed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    totals = [0] * 8
    named_of = 0
    for category, group in categories.items():
        clear = [r for r in group if r.outcome == "clear error"]
        counts = [
            len(group),
            len(clear),
            sum(r.names_it == "yes" for r in clear),
            sum(r.outcome == "panic" for r in group),
            sum(r.outcome == "hang" for r in group),
            sum(r.outcome == "accepted" and not r.unexpected for r in group),
            sum(r.unexpected for r in group),
            sum(not r.input_unchanged for r in group),
        ]
        totals = [a + b for a, b in zip(totals, counts)]
        named_of += sum(r.names_it != "" for r in clear)
        named = f"{counts[2]} of {sum(r.names_it != '' for r in clear)}"
        cells = [str(counts[0]), str(counts[1]), named] + [str(c) for c in counts[3:]]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    cells = [str(totals[0]), str(totals[1]), f"{totals[2]} of {named_of}"] + [str(c) for c in totals[3:]]
    lines.append("| **all** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    lines.append("")
    outcomes: dict = {}
    for row in rows:
        outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
    lines.append("Outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + ".")
    lines.append("")
    unexpected = [r for r in rows if r.unexpected]
    lines.append(f"## Unexpected outcomes ({len(unexpected)})")
    lines.append("")
    if not unexpected:
        lines.append("None.")
    for row in unexpected:
        lines.append(f"- **{row.category} / {row.case}**: expected {row.expected}, got {row.outcome} "
                     f"(exit {row.exit_code}, {row.seconds:.2f} s){'; ' + row.note if row.note else ''}")
        lines.append(f"  - `{row.command}`")
        stderr = row.stderr.strip()
        if stderr:
            shown = "\n".join(stderr.splitlines()[:8])
            lines.append("  - stderr:")
            lines.append("")
            lines.append("    ```")
            lines.extend("    " + line for line in shown.splitlines())
            lines.append("    ```")
    unnamed = [r for r in rows if r.names_it == "no"]
    lines.append("")
    lines.append(f"## Clear errors that do not name the file or field ({len(unnamed)})")
    lines.append("")
    for row in unnamed:
        lines.append(f"- {row.category} / {row.case}: {row.stderr_cause or row.stderr_first_line}")
    slowest = sorted(rows, key=lambda r: r.seconds, reverse=True)[:5]
    lines.append("")
    lines.append("## Slowest cases")
    lines.append("")
    for row in slowest:
        lines.append(f"- {row.seconds:.2f} s  {row.category} / {row.case} ({row.outcome})")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cairn", type=Path, default=REPO / "target/release/cairn",
                        help="the binary under test [default: target/release/cairn]")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results",
                        help="folder for bad_input.csv and bad_input.md [default: bench/results]")
    options = parser.parse_args()
    cairn = options.cairn.resolve()
    if not os.access(cairn, os.X_OK):
        print(f"no executable at {cairn}; build it with `cargo build --release -p cairn-cli`",
              file=sys.stderr)
        return 2
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cairn-bad-input-") as tmp:
        tmp_path = Path(tmp).resolve()
        harness = Harness(cairn, tmp_path)
        data = tmp_path / "shipped-data"
        data.mkdir()
        for name in ("digits.csv.gz", "mnist_5k.csv.gz"):
            shutil.copy(REPO / "data" / name, data / name)
        builders = [
            ("npy", lambda: npy_cases(harness)),
            ("dataset", lambda: dataset_cases(harness, data)),
            ("scenario", lambda: scenario_cases(harness, data)),
            ("flags", lambda: flag_cases(harness, data)),
            ("ledger", lambda: ledger_cases(harness)),
            ("outputs", lambda: output_cases(harness, data)),
        ]
        for label, build in builders:
            step = time.monotonic()
            cases = build()
            for case in cases:
                harness.run(case)
            print(f"{label}: {len(cases)} cases in {time.monotonic() - step:.1f} s", file=sys.stderr)
            if label == "ledger":
                step = time.monotonic()
                killed_demo_rows(harness)
                print(f"ledger-killed: in {time.monotonic() - step:.1f} s", file=sys.stderr)
        rows = harness.rows
    elapsed = time.monotonic() - started
    write_csv(rows, options.out / "bad_input.csv")
    text = summary(rows, elapsed, options.cairn)
    (options.out / "bad_input.md").write_text(text)
    print(text)
    return 1 if any(r.unexpected for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
