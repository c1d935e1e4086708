"""The command line as a whole: entry points, help, exit codes, one-line errors, import cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from perfprim.cli._app import COMMANDS, cli
from tests.cli.conftest import SCHEMA, SCRIPT, Run, run_cli
from tests.cli.data import BAD_SLO_FILE, SLO_FILE, lognormal_run, write_log


def _all_commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [()]
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        group = cli.get_command(ctx, name)
        assert group is not None
        found.append((name,))
        if isinstance(group, click.Group):
            found.extend((name, sub) for sub in group.list_commands(ctx))
    return found


def test_console_script_and_module_are_the_same_program() -> None:
    """``perfprim --version`` and ``python -m perfprim --version`` print the installed version."""
    from importlib.metadata import version

    script = run_cli("--version")
    module = run_cli("--version", module=True)
    assert (0, f"perfprim, version {version('perfprim')}\n") == (script.code, script.out)
    assert (script.code, script.out) == (module.code, module.out)


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "perfprim")
def test_help_everywhere_with_an_example(path: tuple[str, ...]) -> None:
    """Every command and group answers --help (exit 0) and shows an example."""
    result = run_cli(*path, "--help")
    assert 0 == result.code
    assert "Usage: perfprim" in result.out
    assert "Example" in result.out
    assert "" == result.err


def test_every_command_takes_json() -> None:
    """Every leaf command has a --json flag (the documented schema)."""
    ctx = click.Context(cli)
    leaves = [p for p in _all_commands() if len(p) == 2]
    assert 10 <= len(leaves)
    for group_name, name in leaves:
        group = cli.get_command(ctx, group_name)
        assert isinstance(group, click.Group)
        command = group.get_command(ctx, name)
        assert command is not None
        assert "--json" in [opt for p in command.params for opt in getattr(p, "opts", [])], name


def test_commands_table_matches_the_groups() -> None:
    """COMMANDS names exactly the groups ``perfprim --help`` lists."""
    listed = run_cli("--help").out
    for name in COMMANDS:
        assert f"  {name} " in listed


def test_no_arguments_shows_the_commands() -> None:
    """``perfprim slo`` without a command shows its commands, exit 2, no traceback."""
    result = run_cli("slo")
    assert 2 == result.code
    assert "budget" in result.err
    assert "Traceback" not in result.err


def test_import_perfprim_stays_light() -> None:
    """``import perfprim``, ``perfprim.cli``, ``perfprim.plot``: no click, rich or matplotlib."""
    code = (
        "import sys, json, perfprim, perfprim.cli, perfprim.plot;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    modules = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    heavy = [m for m in modules if m.split(".")[0] in {"click", "rich", "matplotlib", "numpy"}]
    assert [] == heavy


def test_help_imports_no_heavy_module() -> None:
    """``perfprim --help`` and ``perfprim hist --help`` load click only, never rich or the math."""
    code = (
        "import sys, json\n"
        "from perfprim.cli._app import cli\n"
        "for args in (['--help'], ['hist', '--help'], ['slo', 'budget', '--help']):\n"
        "    cli.main(args=args, standalone_mode=False)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.splitlines()[-1])
    heavy = {"rich", "matplotlib", "numpy", "yaml", "hdrh", "prometheus_client"}
    assert [] == [m for m in modules if m.split(".")[0] in heavy]
    assert [] == [
        m
        for m in modules
        if m.startswith(("perfprim.histogram", "perfprim.slo", "perfprim.capacity"))
    ]


def _files(tmp_path: Path) -> dict[str, str]:
    write_log(tmp_path / "run.hlog", lognormal_run(-4.0, n=400))
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    (tmp_path / "bad-slo.yaml").write_text(BAD_SLO_FILE)
    (tmp_path / "text.txt").write_text("hello world\nnot a histogram\n")
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "steps.csv").write_text("concurrency,throughput\n1,100\n2,abc\n")
    (tmp_path / "few.csv").write_text("1,100\n2,190\n4,350\n")
    (tmp_path / "empty.hlog").write_text("")
    (tmp_path / "neither.yaml").write_text("a: 1\n")
    (tmp_path / "other.prom").write_text("# TYPE up gauge\nup 1\n")
    return {"dir": str(tmp_path)}


# (arguments, exit code, a piece of the one-line message)
BAD_INPUTS: list[tuple[list[str], int, str]] = [
    (["nope"], 2, "No such command 'nope'"),
    (["slo", "budget"], 2, "Missing option '--target'"),
    (["slo", "budget", "--target", "99.9"], 2, "write 99.9%"),
    (["slo", "budget", "--target", "abc"], 2, "not a ratio"),
    (["slo", "budget", "--target", "150%"], 2, "at most 100%"),
    (["slo", "budget", "--target", "99.9%", "--window", "30"], 2, "has no unit"),
    (["slo", "budget", "--target", "99.9%", "--window", "30x"], 2, "not a duration"),
    (["slo", "budget", "--target", "99.9%", "--window", "10m"], 2, "at least 1h"),
    (["slo", "budget", "--target", "99.9%", "--total", "-5"], 2, "--total"),
    (["slo", "check", "missing.yaml"], 2, "cannot read the SLO file"),
    (["slo", "check", "bad-slo.yaml"], 1, "problem(s)"),
    (["slo", "check", "neither.yaml"], 1, "neither a perfprim SLO file"),
    (["slo", "rules", "bad-slo.yaml"], 1, "not a valid SLO file"),
    (["slo", "rules", "slo.yaml", "--buckets", "missing.prom"], 2, "cannot read the exposition"),
    (["slo", "rules", "slo.yaml", "--buckets", "http://127.0.0.1:9/metrics"], 2, "cannot scrape"),
    (["slo", "rules", "slo.yaml", "--buckets", "ftp://x/y"], 2, "http(s):// URL"),
    (["slo", "rules", "slo.yaml", "--buckets", "text.txt"], 2, "not a Prometheus exposition"),
    (["slo", "rules", "slo.yaml", "--buckets", "other.prom"], 2, "has no histogram"),
    (["hist", "show", "missing.hlog"], 2, "cannot read"),
    (["hist", "show", "text.txt"], 2, "not a histogram file"),
    (["hist", "show", "binary.bin"], 2, "not a text file"),
    (["hist", "show", "empty.hlog"], 2, "is empty"),
    (["hist", "show", "run.hlog", "--percentiles", "50,abc"], 2, "not a percentile"),
    (["hist", "show", "run.hlog", "--percentiles", "101"], 2, "must be in (0, 100]"),
    (["hist", "show", "run.hlog", "--unit", "parsec"], 2, "--unit"),
    (["hist", "merge", "run.hlog"], 2, "Missing option '-o'"),
    (["hist", "diff", "run.hlog"], 2, "Missing argument 'NEW'"),
    (["hist", "diff", "run.hlog", "run.hlog", "--percentiles", "100"], 2, "p100"),
    (["hist", "diff", "run.hlog", "run.hlog", "--confidence", "100%"], 2, "below 100%"),
    (["hist", "diff", "run.hlog", "run.hlog", "--tolerance", "lots"], 2, "not a ratio"),
    (["hist", "plot", "run.hlog", "-o", "p.png", "--slo", "200ms"], 2, "LATENCY@PERCENTILE"),
    (["hist", "plot", "run.hlog", "-o", "p.png", "--slo", "200@99"], 2, "has no unit"),
    (["hist", "plot", "run.hlog", "-o", "p.png", "--slo", "200ms@100"], 2, "(0, 100)"),
    (["hist", "plot", "run.hlog", "-o", "no-such-dir/p.png"], 2, "cannot write"),
    (["capacity", "usl", "missing.csv"], 2, "cannot read"),
    (["capacity", "usl", "steps.csv"], 2, "line 3: throughput 'abc' is not a number"),
    (["capacity", "usl", "few.csv"], 2, "at least 6"),
    (["capacity", "usl", "binary.bin"], 2, "not a CSV text file"),
    (["capacity", "usl", "few.csv", "--predict", "x"], 2, "not a number"),
    (["capacity", "erlang", "--rate", "100/s"], 2, "Missing option"),
    (
        [
            "capacity",
            "erlang",
            "--rate",
            "fast",
            "--aht",
            "1s",
            "--target-wait",
            "1s",
            "--service-level",
            "80%",
        ],
        2,
        "not a rate",
    ),
    (
        [
            "capacity",
            "erlang",
            "--rate",
            "10/fortnight",
            "--aht",
            "1s",
            "--target-wait",
            "1s",
            "--service-level",
            "80%",
        ],
        2,
        "unit after /",
    ),
    (
        [
            "capacity",
            "erlang",
            "--rate",
            "10/s",
            "--aht",
            "1s",
            "--target-wait",
            "1s",
            "--service-level",
            "100%",
        ],
        2,
        "below 100%",
    ),
    (
        ["capacity", "project", "--now", "10", "--growth", "fast", "--capacity", "100"],
        2,
        "not a growth",
    ),
    (
        ["capacity", "project", "--now", "-1", "--growth", "5%/month", "--capacity", "100"],
        2,
        "--now",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUTS, ids=lambda v: str(v)[:60])
def test_bad_input_is_one_line_with_the_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    """Each bad input: the documented exit code, one stderr line saying what to do, no traceback."""
    _files(tmp_path)
    result = run_cli(*args, cwd=tmp_path)
    assert code == result.code, result.err
    lines = result.err.splitlines()
    assert 1 == len(lines), result.err
    assert lines[0].startswith("perfprim: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.err
    if code == 2:
        assert "" == result.out


@pytest.mark.parametrize(
    "args",
    [
        ["hist", "show", "missing.hlog", "--json"],
        ["slo", "budget", "--target", "99.9", "--json"],
        ["capacity", "usl", "few.csv", "--json"],
    ],
)
def test_bad_input_with_json_prints_the_error_document(tmp_path: Path, args: list[str]) -> None:
    """With --json an error is also one JSON document on stdout (ok false, the exit code)."""
    _files(tmp_path)
    result = run_cli(*args, cwd=tmp_path)
    document = result.json()
    assert 2 == result.code
    assert {"exit_code": 2, "message": result.err.removeprefix("perfprim: error: ").strip()} == (
        document["error"]
    )
    assert False is document["ok"]


def test_internal_error_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """A bug surfaces as one line naming PERFPRIM_DEBUG, exit 3 (a mocked failure in-process)."""
    code = (
        "import perfprim.cli._slo as m\n"
        "def boom(*a, **k):\n"
        "    raise RuntimeError('boom')\n"
        "m._policy_rows = boom\n"
        "from perfprim.cli._app import run\n"
        "run(['slo', 'budget', '--target', '99.9%'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert 3 == done.returncode
    assert 1 == len(done.stderr.splitlines())
    assert "internal error: RuntimeError: boom" in done.stderr
    assert "PERFPRIM_DEBUG=1" in done.stderr


def test_schema_is_published_and_versioned() -> None:
    """The schema file pins version 1 and describes every command's result."""
    assert 1 == SCHEMA["properties"]["schema"]["const"]
    described = {rule["if"]["properties"]["command"]["const"] for rule in SCHEMA["allOf"]}
    ctx = click.Context(cli)
    groups = {
        name
        for name in cli.list_commands(ctx)
        if isinstance(cli.get_command(ctx, name), click.Group)
    }
    leaves = {" ".join(p) for p in _all_commands() if len(p) == 2 or (p and p[0] not in groups)}
    leaves = {"load" if leaf == "load run" else leaf for leaf in leaves}  # `perfprim load URL`
    assert leaves == described


def test_output_is_data_on_stdout_messages_on_stderr(tmp_path: Path) -> None:
    """``hist merge`` reports on stderr only; ``--json`` leaves stderr empty."""
    write_log(tmp_path / "a.hlog", lognormal_run(-4.0, n=400))
    human = run_cli("hist", "merge", "a.hlog", "-o", "m.txt", cwd=tmp_path)
    assert (0, "") == (human.code, human.out)
    assert "merged 1 histogram(s)" in human.err
    machine: Run = run_cli("hist", "merge", "a.hlog", "-o", "m.txt", "--json", cwd=tmp_path)
    assert (0, "") == (machine.code, machine.err)
    assert 400 == machine.json()["result"]["count"]


def test_shell_completion_comes_from_click() -> None:
    """``_PERFPRIM_COMPLETE=bash_complete`` completes lazily loaded commands: hist d -> diff."""
    env = {
        **os.environ,
        "COMP_WORDS": "perfprim hist d",
        "COMP_CWORD": "2",
        "_PERFPRIM_COMPLETE": "bash_complete",
    }
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, check=False)
    assert (0, "plain,diff\n") == (done.returncode, done.stdout)


def test_command_name_in_errors_stops_at_operands() -> None:
    """The JSON error names the command words only, never a file or a URL."""
    from perfprim.cli._app import _command_name

    assert "hist show" == _command_name(["hist", "show", "x.hlog", "--json"])
    assert "load" == _command_name(["load", "http://127.0.0.1:8000/", "--json"])
    assert "" == _command_name(["--json"])


def test_without_the_cli_extra_one_line_says_what_to_install() -> None:
    """With click missing, ``perfprim`` prints the pip command, exit 2, no traceback."""
    code = "import sys\nsys.modules['click'] = None\nfrom perfprim.cli import main\nmain()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert 2 == done.returncode
    expected = (
        "perfprim: error: the command line needs the 'click' package, which is not installed. "
        "Install it with: pip install 'perfprim[cli]'"
    )
    assert [expected] == done.stderr.splitlines()
