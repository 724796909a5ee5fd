"""The reference under docs/ covers what the code accepts (issue 10, item 21).

Every key the validators accept (their own ``*_KEYS`` / ``SECTIONS`` constants, so a key
added to a validator fails here until it is documented), every param and port type, and every
command and option of the ``modreg`` command tree (read from click itself) must appear in the
reference. ``python tests/test_docs.py`` rewrites docs/cli.md from the command tree.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest

from modreg.client.cli import cli
from modreg.engine import spec
from modreg.registry import manifest
from modreg.registry.schemas import ParamType, PortType

DOCS = Path(__file__).resolve().parents[1] / "docs"


def validator_keys(module: ModuleType) -> set[str]:
    """The keys a validator module accepts: its ``SECTIONS`` and ``*_KEYS`` constants."""
    keys: set[str] = set()
    for name, value in vars(module).items():
        if (name == "SECTIONS" or name.endswith("_KEYS")) and isinstance(
            value, set | frozenset | tuple | list
        ):
            keys |= {str(key) for key in value}
    return keys


def documented(text: str) -> set[str]:
    """Every `code span` of a markdown text, and each word of one."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`]+)`", prose)
    return set(spans) | {word for span in spans for word in re.findall(r"[\w-]+", span)}


@pytest.mark.parametrize(
    ("module", "page"), [(manifest, "manifest.md"), (spec, "pipeline.md")], ids=["toml", "yaml"]
)
def test_every_key_the_validators_accept_is_in_the_reference(module: ModuleType, page: str) -> None:
    missing = validator_keys(module) - documented((DOCS / page).read_text(encoding="utf-8"))
    assert not missing, f"docs/{page} does not name: {sorted(missing)}"


def test_every_param_and_port_type_is_in_the_reference() -> None:
    names = {t.value for t in ParamType} | {t.value for t in PortType}
    missing = names - documented((DOCS / "manifest.md").read_text(encoding="utf-8"))
    assert not missing, f"docs/manifest.md does not name: {sorted(missing)}"


def walk(
    command: click.Command, path: tuple[str, ...] = ("modreg",)
) -> Iterator[tuple[str, click.Command]]:
    """``("modreg lock", command)`` for every command of the tree, groups included."""
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def sections(text: str) -> dict[str, str]:
    """docs/cli.md's ``## `modreg …` `` sections, by command."""
    parts = re.split(r"^## `([^`]+)`\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    found = sections((DOCS / "cli.md").read_text(encoding="utf-8"))
    missing = []
    for path, command in walk(cli):
        if path not in found:
            missing.append(path)
            continue
        for param in command.params:
            for flag in getattr(param, "opts", []) if isinstance(param, click.Option) else []:
                if flag.startswith("--") and not _names_option(found[path], flag):
                    missing.append(f"{path} {flag}")
    assert not missing, f"docs/cli.md lacks (python tests/test_docs.py rewrites it): {missing}"


def _names_option(section: str, flag: str) -> bool:
    """Whether a code span of ``section`` names ``flag`` (``-j, --jobs N`` names ``--jobs``)."""
    return re.search(rf"`[^`\n]*{re.escape(flag)}(?![\w-])[^`\n]*`", section) is not None


def render_command(path: str, command: click.Command) -> str:
    """One command's section: usage, help, options."""
    with click.Context(command, info_name=path) as ctx:
        usage = " ".join(command.collect_usage_pieces(ctx))
        help_text = (command.help or "").replace("\b\n", "")
        rows = [
            record for param in command.get_params(ctx)
            if isinstance(param, click.Option) and (record := param.get_help_record(ctx))
        ]  # fmt: skip
    lines = [f"## `{path}`", "", "```", f"{path} {usage}".rstrip(), "```", ""]
    lines += [_help_markdown(help_text), ""]
    if rows:
        lines += ["| option | meaning |", "|---|---|"]
        lines += [f"| `{opts}` | {_cell(text)} |" for opts, text in rows]
        lines.append("")
    if isinstance(command, click.Group):
        subs = ", ".join(f"`{path} {name}`" for name in sorted(command.commands))
        lines += [f"Commands: {subs}.", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _help_markdown(text: str) -> str:
    """Click help as markdown: the ``Example:`` lines as a code block."""
    head, _, example = text.partition("Example:")
    body = " ".join(head.split())
    if example.strip():
        code = textwrap.dedent(example.strip("\n")).strip()
        body += f"\n\nExample:\n\n```sh\n{code}\n```"
    return body


INTRO = """\
# The `modreg` commands

Generated from the command tree (`python tests/test_docs.py` rewrites this file;
`tests/test_docs.py` fails while a command or option is missing here). Every command exits 0
on success, 1 on a user error with one `error: …` line on stderr, 2 on a usage error; `--json`
prints the keys DESIGN.md lists. The registry and token come from `--registry` / `--token`,
then `MODREG_URL` / `MODREG_TOKEN`, then the file `modreg login` writes.

"""


def render_cli_reference() -> str:
    return INTRO + "\n".join(render_command(path, command) for path, command in walk(cli))


if __name__ == "__main__":
    (DOCS / "cli.md").write_text(render_cli_reference(), encoding="utf-8")
    sys.exit(0)
