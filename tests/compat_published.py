"""Run the test suite bundled in the published omgrab 0.1.2 wheel against this package.

``make compat`` runs this module (``python -m tests.compat_published``); the quick-start test
(``tests/test_compat_quickstart.py``) uses its download and README helpers. It downloads the
published wheel with pip at test time (nothing of it is committed here), extracts the wheel's
bundled tests and its ``conftest.py`` into a temporary directory, and runs them unmodified with
pytest against the installed ``omgrab`` (this package).

Two lists kept in the repository deselect tests by node id, one line each
(``node_id  # name touched / reason``):

* ``tests/compat_private.txt``: tests that patch or read a private name (leading ``_``) of the
  published implementation. Each line names that private name after ``#`` and the script checks
  that the test's source really mentions it, so the list cannot hide a public-name test.
* ``tests/compat_pending.txt``: public-name tests not yet passing, each with its reason (see
  ``docs/compat.md``). Kept honest: a listed test that is not collected fails the run.

It prints ``passed / deselected-private / pending / failed`` and exits non-zero when any
selected test fails or errors, or when a list names a test that does not exist.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile

PUBLISHED = "omgrab==0.1.2"
REPO = pathlib.Path(__file__).resolve().parent.parent
PRIVATE_LIST = REPO / "tests" / "compat_private.txt"
PENDING_LIST = REPO / "tests" / "compat_pending.txt"
PYTEST_INI = """[pytest]
addopts = -p no:cacheprovider
timeout = 120
"""


def read_list(path: pathlib.Path) -> dict[str, str]:
    """Return ``{node_id: comment}`` from a deselect list (``#`` starts the comment)."""
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        node, _, comment = line.partition("#")
        entries[node.strip()] = comment.strip()
    return entries


def readme_python_blocks(wheel: pathlib.Path) -> dict[str, str]:
    """Return the fenced ``python`` blocks of the wheel's README, keyed by their section title."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode()
    blocks: dict[str, str] = {}
    for match in re.finditer(r"^## (.+?)$(.*?)(?=^## |\Z)", text, re.M | re.S):
        code = re.search(r"^```python\n(.*?)^```", match.group(2), re.M | re.S)
        if code:
            blocks[match.group(1).strip()] = code.group(1)
    return blocks


def download_wheel(dest: pathlib.Path) -> pathlib.Path:
    """Download the published wheel with pip and return its path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            PUBLISHED,
            "--no-deps",
            "--quiet",
            "-d",
            str(dest),
        ],
        check=True,
    )
    wheels = sorted(dest.glob("omgrab-*.whl"))
    if not wheels:
        raise SystemExit(f"compat: pip download {PUBLISHED} produced no wheel in {dest}")
    return wheels[0]


def extract_tests(wheel: pathlib.Path, dest: pathlib.Path) -> None:
    """Extract the wheel's tests (``omgrab/**/tests/**`` and ``omgrab/conftest.py``)."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            rel = pathlib.PurePosixPath(name)
            if rel.parts[0] != "omgrab":
                continue
            inner = pathlib.PurePosixPath(*rel.parts[1:])
            if inner.name == "conftest.py" or "tests" in inner.parts[:-1]:
                target = dest / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    (dest / "pytest.ini").write_text(PYTEST_INI)


def test_source(root: pathlib.Path, node_id: str) -> str | None:
    """Return the source of the test function a node id names (parameters stripped)."""
    path, *names = node_id.split("::")
    file = root / path
    if not file.exists() or not names:
        return None
    src = file.read_text()
    body: list[ast.stmt] = ast.parse(src).body
    found: ast.AST | None = None
    for name in names:
        name = name.split("[", 1)[0]
        found = next(
            (n for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name),
            None,
        )
        if found is None:
            return None
        body = found.body if isinstance(found, ast.ClassDef) else []
    return ast.get_source_segment(src, found) if found is not None else None


def check_private(root: pathlib.Path, private: dict[str, str]) -> list[str]:
    """Check every private-list entry names a private name its test really touches."""
    problems = []
    for node, comment in private.items():
        src = test_source(root, node)
        names = re.findall(r"\b_[A-Za-z]\w*", comment)
        if src is None:
            problems.append(f"{node}: no such test in the published wheel")
        elif not names or not any(n in src for n in names):
            problems.append(f"{node}: listed as private but does not mention {comment!r}")
    return problems


def main() -> int:
    """Download, extract, run and report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="omgrab-compat-"))
    wheel = download_wheel(tmp / "wheel")
    root = tmp / "published"
    extract_tests(wheel, root)
    private = read_list(PRIVATE_LIST)
    pending = read_list(PENDING_LIST)
    problems = check_private(root, private)
    problems += [
        f"{n}: pending test not in the published wheel"
        for n in pending
        if ("::" in n and test_source(root, n) is None) or not (root / n.split("::")[0]).exists()
    ]
    junit = tmp / "junit.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--rootdir",
        str(root),
        "-c",
        str(root / "pytest.ini"),
        "--import-mode=importlib",
        "--continue-on-collection-errors",
        f"--junitxml={junit}",
        *args.pytest_args,
    ]
    for node in [*private, *pending]:
        # A file entry (no "::") is a whole module that cannot run here (see docs/compat.md).
        cmd += ["--deselect", node] if "::" in node else [f"--ignore={root / node}"]
    proc = subprocess.run(cmd, cwd=root, check=False)
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kinds = {child.tag for child in case}
            kind = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
            counts[{"failure": "failed"}.get(kind, kind)] += 1
    print(
        f"compat {PUBLISHED}: {counts['passed']} passed, {len(private)} deselected-private, "
        f"{len(pending)} pending, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped"
    )
    for problem in problems:
        print(f"compat: list error: {problem}", file=sys.stderr)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    else:
        print(f"compat: kept {tmp}")
    failed = counts["failed"] + counts["error"] > 0 or proc.returncode not in (0, 5)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
