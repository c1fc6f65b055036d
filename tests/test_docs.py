"""The documentation says what the tool does.

- Every relative link in README.md and docs/**/*.md reaches a file, and every #anchor a heading of that
  file (GitHub's slugs).
- Every `rebusyn ...` line in a fenced code block parses with the real argument parser, so a page cannot
  name a command or flag that does not exist.
- docs/getting-started.md is run for real: the blocks marked `<!-- test: run -->` through the CLI's main()
  (with HOME and the working folder in tmp_path, as a user's shell would have them), `<!-- test: output -->`
  blocks compared with what those commands printed (durations and rates masked), `<!-- test: python -->`
  blocks executed. docs/train.md's marked blocks then run on the same root. Editing a page so that its
  walkthrough no longer works, or no longer prints what it shows, fails here.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import os
import re
import shlex
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from rebusyn.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
GETTING_STARTED = REPO / "docs" / "getting-started.md"
TRAIN = REPO / "docs" / "train.md"
SHOWN_HOME = "/home/you"  # the home folder the pages' pasted output shows

# ---------------------------------------------------------------------------------------------------
# Reading Markdown: fenced blocks (with the `<!-- test: ... -->` marker just before them) and prose lines.
# Hand-written rather than markdown-it-py: the project does not depend on a Markdown parser, and fences,
# headings and inline links are all these checks need.

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    info: str  # the fence's language: bash, text, python, ...
    lines: list[str]
    line: int  # 1-based line of the opening fence
    marker: str | None  # "run", "run exit=2", "output", "python" or None

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Page:
    blocks: list[Block] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)


def read_page(path: Path) -> Page:
    page = Page()
    fence: str | None = None
    marker: str | None = None
    current: Block | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = _FENCE.match(line)
        if current is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not opening.group(2):  # fmt: skip
                page.blocks.append(current)
                current = fence = None
            else:
                current.lines.append(line)
            continue
        if opening:
            fence = opening.group(1)
            current = Block(opening.group(2), [], number, marker)
            marker = None
            continue
        found = _MARKER.match(line)
        if found:
            marker = found.group(1)
        elif line.strip():
            marker = None  # a marker belongs to the block right after it
            page.prose.append((number, line))
    assert current is None, f"{path}: code block opened at line {current.line} is never closed"
    return page


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for _, line in read_page(path).prose:
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = github_slug(heading.group(1))
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0  # a repeated heading gets -1, -2, ...
    return set(seen)


# ---------------------------------------------------------------------------------------------------
# 1. Links

_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def broken_links(page: Path, base: Path = REPO) -> list[str]:
    problems = []
    for number, line in read_page(page).prose:
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):  # no links inside code spans
            if re.match(r"^[a-zA-Z][\w+.-]*:", target):  # https:, mailto:: not checked offline
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(base)}:{number}: {target}"
            if not resolved.exists():
                problems.append(f"{where}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_reach_a_file_and_a_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_link_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A page\n\n## Its `second` heading (b)\n", encoding="utf-8")
    page = tmp_path / "index.md"
    page.write_text(
        "[ok](a.md) [ok](a.md#its-second-heading-b) [ok](#top) `[not a link](nowhere.md)`\n"
        "[gone](b.md) [bad anchor](a.md#second)\n\n# Top\n\n```\n[in code](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page, base=tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "b.md: no such file",
        "a.md#second: no heading with anchor #second in a.md",
    ]


# ---------------------------------------------------------------------------------------------------
# 2. Every `rebusyn ...` line in a code block parses

# `rebusyn build ...`, `rebusyn --help`; not output such as `rebusyn stats: data (...)` or `rebusyn: error`
_COMMAND = re.compile(r"^\s*(?:\$\s+)?(?:\.venv/bin/)?rebusyn\s+(?:-|[a-z][a-z-]*(?:\s|$))")


def command_lines(page: Path) -> list[tuple[int, str]]:
    """(line, command) for every rebusyn command in the page's fenced blocks. Continuations are joined:
    lines ending in `\\`, and a synopsis's indented `[--option ...]` lines."""
    found = []
    for block in read_page(page).blocks:
        lines = block.lines
        for i, line in enumerate(lines):
            if not _COMMAND.match(line):
                continue
            j = i
            while j + 1 < len(lines) and (
                lines[j].rstrip().endswith("\\") or re.match(r"^\s+\[", lines[j + 1])
            ):
                j += 1
                line = line.rstrip().removesuffix("\\").rstrip() + " " + lines[j].strip()
            found.append((block.line + 1 + i, re.sub(r"^\s*(?:\$\s+)?(?:\.venv/bin/)?", "", line)))
    return found


def _is_placeholder(word: str) -> bool:
    # synopsis lines such as `rebusyn build --groups R,E,B,U [--sources icdar2015,...] [--root data]`
    return word.startswith("[") or "<" in word or word.endswith("...")


def parse_error(command: str) -> str | None:
    """None if `rebusyn.cli.build_parser()` accepts the command, else argparse's message."""
    words = shlex.split(command, comments=True)[1:]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(words)
    except SystemExit as exit_:
        if exit_.code not in (0, None):  # --help and --version exit 0
            return stderr.getvalue().strip().splitlines()[-1]
    return None


def unknown_options(synopsis: str) -> list[str]:
    """The `--options` a synopsis line names that its command does not have."""
    words = shlex.split(synopsis, comments=True)
    options = re.findall(r"(?<![\w-])--[a-z][a-z-]*", synopsis)
    return [o for o in options if "unrecognized arguments" in (parse_error(f"rebusyn {words[1]} {o}") or "")]


def test_every_documented_command_line_parses() -> None:
    checked, skipped, failures = 0, [], []
    for page in PAGES:
        for number, command in command_lines(page):
            where = f"{page.relative_to(REPO)}:{number}"
            if any(_is_placeholder(w) for w in shlex.split(command, comments=True)):
                skipped.append(where)  # a synopsis: its options must exist all the same
                failures += [f"{where}: {command}\n    no option {o}" for o in unknown_options(command)]
                continue
            checked += 1
            error = parse_error(command)
            if error:
                failures.append(f"{where}: {command}\n    {error}")
    assert failures == []
    # The pages hold dozens of commands; skipping is for synopsis lines only (1 today: build.md's).
    assert checked >= 60, checked
    assert len(skipped) <= 3, skipped


@pytest.mark.parametrize(
    "command",
    ["rebusyn build --sources icdar2015 --form ~/Downloads", "rebusyn mix --ratio 3:1 --materialise",
     "rebusyn synth --n 0", "rebusyn bulid --sources icdar2015", "rebusyn build --crop rotate"],
)  # fmt: skip
def test_parse_check_catches_a_wrong_flag_or_value(command: str) -> None:
    assert parse_error(command)


def test_command_lines_are_found_only_in_code_blocks(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "rebusyn build --nope in prose\n\n```bash\nrebusyn mix --ratio 3:1   # comment\n"
        "$ rebusyn synth --n 5 \\\n    --workers 2\nmake demo\nrebusyn build --groups R [--root DIR]\n"
        "   [--from DIR]\n```\n",
        encoding="utf-8",
    )
    assert command_lines(page) == [
        (4, "rebusyn mix --ratio 3:1   # comment"),
        (5, "rebusyn synth --n 5 --workers 2"),
        (8, "rebusyn build --groups R [--root DIR] [--from DIR]"),
    ]
    assert unknown_options("rebusyn build --groups R [--root DIR] [--form DIR] [--max-len 25]") == ["--form"]


# ---------------------------------------------------------------------------------------------------
# 3. The getting-started walkthrough, run for real


@dataclass
class Step:
    block: Block
    expected_exit: int = 0
    output: str = ""  # what its commands printed (stderr then stdout of each), or a python traceback
    exits: list[int] = field(default_factory=list)
    namespace: dict = field(default_factory=dict)


def marked_steps(page: Path) -> list[Step]:
    steps = []
    for block in read_page(page).blocks:
        if block.marker is None:
            continue
        kind, _, rest = block.marker.partition(" ")
        assert kind in ("run", "output", "python"), f"{page.name}:{block.line}: unknown marker {kind!r}"
        exit_code = int(rest.split("=", 1)[1]) if rest.startswith("exit=") else 0
        steps.append(Step(block, exit_code))
    return steps


@contextlib.contextmanager
def terminal_logging() -> Iterator[list[logging.Handler]]:
    """Let main()'s logging.basicConfig install its own stderr handler, as in a terminal (pytest's
    handlers would otherwise swallow the WARNING lines the pages show); put everything back after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield root.handlers
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def run_command(command: str, handlers: list[logging.Handler]) -> tuple[int, str]:
    words = [os.path.expanduser(w) for w in shlex.split(command, comments=True)]  # the shell's ~
    assert words[0] == "rebusyn", f"only rebusyn commands can be marked to run: {command}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for handler in handlers:  # basicConfig's handler, from an earlier call, writes to this stderr
            handler.setStream(err)
        try:
            code = main(words[1:])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, err.getvalue() + out.getvalue()


def run_steps(steps: list[Step]) -> None:
    with terminal_logging() as handlers:
        for step in steps:
            if step.block.marker.startswith("run"):
                for line in step.block.lines:
                    if line.strip() and not line.lstrip().startswith("#"):
                        code, printed = run_command(line, handlers)
                        step.exits.append(code)
                        step.output += printed
            elif step.block.marker == "python":
                step.namespace = {"__name__": "__main__"}
                out = io.StringIO()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                        exec(
                            compile(step.block.text, f"block at line {step.block.line}", "exec"),
                            step.namespace,
                        )
                except Exception:  # reported by check_steps, with the traceback
                    step.output = traceback.format_exc()
                    step.exits.append(1)
                else:
                    step.output = out.getvalue()
                    step.exits.append(0)


def masked(text: str, home: Path) -> list[str]:
    """Lines with the home folder shown as the pages show it, durations and rates masked, spacing folded."""
    for real in {str(home.resolve()), str(home)}:
        text = text.replace(real, SHOWN_HOME)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"[\d,]+(?:\.\d+)? samples/s", "<rate> samples/s", line)
        line = re.sub(r"\b\d[\d,]*(?:\.\d+)? s\b", "<t> s", line)
        # the build table's last column is samples/s
        line = re.sub(r"^(\S+\s+[A-Z]\s+\d+/\d+ ok\s.*\S)\s+[\d,]+$", r"\1 <rate>", line)
        if line.strip():
            lines.append(" ".join(line.split()))
    return lines


@dataclass
class Walkthrough:
    home: Path
    work: Path
    steps: list[Step]


def walk(page: Path, home: Path, work: Path) -> list[Step]:
    steps = marked_steps(page)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        for name in ("REBUSYN_ROOT", "REBUSYN_RECIPES"):
            patch.delenv(name, raising=False)
        patch.chdir(work)
        run_steps(steps)
    return steps


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    home = tmp_path_factory.mktemp("home")
    work = home / "rebusyn-start"  # the page: mkdir ~/rebusyn-start && cd ~/rebusyn-start
    work.mkdir()
    return Walkthrough(home, work, walk(GETTING_STARTED, home, work))


def check_steps(steps: list[Step], home: Path, page: Path) -> None:
    previous: Step | None = None
    for step in steps:
        where = f"{page.name}:{step.block.line}"
        if step.block.marker.startswith("run"):
            assert step.exits, f"{where}: a run block with no command"
            assert step.exits[:-1] == [0] * (len(step.exits) - 1), f"{where}: {step.exits}\n{step.output}"
            assert step.exits[-1] == step.expected_exit, f"{where}: exit {step.exits}\n{step.output}"
        elif step.block.marker == "python":
            assert step.exits == [0], f"{where}:\n{step.output}"
        elif step.block.marker == "output":
            assert previous is not None and previous.block.marker.startswith("run"), \
                f"{where}: an output block must follow a run block"  # fmt: skip
            assert masked(previous.output, home) == masked(step.block.text, home), where
        previous = step


def test_getting_started_walkthrough_runs_and_prints_what_the_page_shows(walkthrough: Walkthrough) -> None:
    check_steps(walkthrough.steps, walkthrough.home, GETTING_STARTED)


def test_getting_started_walkthrough_covers_the_whole_path() -> None:
    """Markers must stay on the steps that matter: a page that quietly unmarks them would test nothing."""
    steps = marked_steps(GETTING_STARTED)
    run_lines = [line for s in steps if s.block.marker.startswith("run") for line in s.block.lines]
    commands = [words for words in (shlex.split(line, comments=True) for line in run_lines) if words]
    official = [s for s in steps if s.expected_exit == 2]
    assert len(official) == 1
    words = shlex.split(official[0].block.lines[0], comments=True)
    assert words[:4] == ["rebusyn", "build", "--sources", "icdar2015"] and "--from" in words
    assert "--skip-checksum" not in words
    assert any(c[1] == "build" and "--from" in c and "--skip-checksum" in c for c in commands)
    for command in ("samples", "synth", "mix", "verify", "sources"):
        assert any(c[1] == command for c in commands), command
    python = "".join(s.block.text for s in steps if s.block.marker == "python")
    assert "rebusyn.load_dataset(" in python and "RatioBatchSampler(" in python
    assert sum(s.block.marker == "output" for s in steps) >= 4


def test_getting_started_python_blocks_load_the_mix(walkthrough: Walkthrough) -> None:
    spec = json.loads((walkthrough.work / "manifests/rebusyn-3to1/manifest.json").read_text())
    python = [s for s in walkthrough.steps if s.block.marker == "python"]
    hf = next(s.namespace for s in python if "load_dataset" in s.block.text)
    assert hf["ds"].num_rows == spec["counts"]["rows"] == 168
    assert sum(hf["ds"]["synthetic"]) == spec["counts"]["synthetic"]
    assert all(re.fullmatch(r"[a-z0-9]{1,25}", label) for label in hf["ds"]["label"])
    torch_ns = next(s.namespace for s in python if "RatioBatchSampler" in s.block.text)
    images = torch_ns["images"]  # the last batch of the loop
    assert tuple(images.shape[1:]) == (3, 32, 128) and str(images.dtype) == "torch.uint8"
    first = next(iter(torch_ns["sampler"]))
    assert int(torch_ns["ds"].synthetic()[first].sum()) == 16  # the page's "48 real + 16 synthetic"


def test_download_table_names_the_recipe_archives() -> None:
    recipe = yaml.safe_load((REPO / "recipes" / "icdar2015.yaml").read_text(encoding="utf-8"))
    archives = recipe["inputs"][recipe["default_input"]]["archives"]
    rows = [line for _, line in read_page(GETTING_STARTED).prose if line.startswith("| `")]
    table = {re.findall(r"`([^`]+)`", row)[0]: re.findall(r"`([^`]+)`", row)[-1] for row in rows}
    assert table == {a["name"]: a["md5"] for a in archives}


def test_train_page_blocks_run_on_the_walkthrough_root(walkthrough: Walkthrough) -> None:
    steps = walk(TRAIN, walkthrough.home, walkthrough.work)
    assert any(s.block.marker == "run" for s in steps) and any(s.block.marker == "python" for s in steps)
    check_steps(steps, walkthrough.home, TRAIN)
    work = walkthrough.work
    # (a) what PARSeq's glob (dataset.py:40) picks on the root as it is
    real = glob.glob(str(work / "data/train/real/**/data.mdb"), recursive=True)
    synth = glob.glob(str(work / "data/train/synth/**/data.mdb"), recursive=True)
    assert [Path(p).parent.parent.name for p in real] == ["icdar2015"]
    assert {Path(p).parent.parent.name for p in synth} == {"fast"}
    # (b) ... and on the materialized mix with data.train_dir=.
    lmdb = work / "manifests/rebusyn-3to1/lmdb"
    found = glob.glob(str(lmdb / "train" / "." / "**/data.mdb"), recursive=True)
    assert sorted(Path(p).parent.parent.name for p in found) == ["real", "synth"]
    marker = json.loads((lmdb / "materialized.json").read_text())
    assert (marker["real"], marker["synthetic"]) == (126, 42)
    # (e) the loader block hands PARSeq-normalized floats
    images = next(s.namespace for s in steps if s.block.marker == "python")["images"]
    assert images.dtype.is_floating_point and -1.0 <= float(images.min()) < float(images.max()) <= 1.0


def test_official_build_line_refuses_the_sample_archives(walkthrough: Walkthrough) -> None:
    """The page: without --skip-checksum the sample archives are refused (exit 1, ChecksumMismatch).
    Runs last: it leaves the root's copy of the downloads deleted, as rebusyn does with a bad file."""
    official = next(s for s in walkthrough.steps if s.expected_exit == 2).block.lines[0]
    samples = [p for p in (walkthrough.home / "Downloads" / "ic15-samples").iterdir() if p.suffix == ".zip"]
    assert len(samples) == 3
    with pytest.MonkeyPatch.context() as patch, terminal_logging() as handlers:
        patch.setenv("HOME", str(walkthrough.home))
        patch.chdir(walkthrough.work)
        words = [os.path.expanduser(w) for w in shlex.split(official)]
        target = Path(words[words.index("--from") + 1])  # the folder the official files were saved to
        target.mkdir(parents=True, exist_ok=True)
        for archive in samples:
            shutil.copy(archive, target / archive.name)
        code, printed = run_command(official, handlers)
    assert code == 1 and "ChecksumMismatch" in printed and "--skip-checksum" in printed, printed


def test_output_masking_keeps_everything_but_times_and_rates(tmp_path: Path) -> None:
    a = "icdar2015  B      0/2 ok        24        150   126       24       1  0.4        472\nin 0.3 s"
    b = "icdar2015  B      0/2 ok        24        150   126       24       1  0.4      1,041\nin 12.5 s"
    assert masked(a, tmp_path) == masked(b, tmp_path)
    assert masked(a, tmp_path) != masked(a.replace("126", "125"), tmp_path)
    assert masked(f"into {tmp_path}/x", tmp_path) == [f"into {SHOWN_HOME}/x"]
