"""`knscale completion bash|zsh` — a shell completion script generated from the argparse parser.

No dependency (shtab would be one more package for ~100 lines): the script lists every
subcommand, its flags, and the choices of flags that have them (`-o`, `--fail-on`); paths are
completed by the shell's own file completion. Install: `source <(knscale completion bash)`, or
for zsh `knscale completion zsh > "${fpath[1]}/_knscale"`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script: source <(knscale completion bash)",
    )
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=run)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for its subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def spec(parser: argparse.ArgumentParser) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """subcommand → (its option strings, option → its choices)."""
    out: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for name, sub in sorted(_subparsers(parser).items()):
        flags: list[str] = []
        choices: dict[str, list[str]] = {}
        positional: list[str] = []
        for action in sub._actions:
            if action.option_strings:
                flags += action.option_strings
                if action.choices:
                    for flag in action.option_strings:
                        choices[flag] = [str(c) for c in action.choices]
            elif action.choices:
                positional += [str(c) for c in action.choices]
        if positional:
            choices[""] = positional
        out[name] = (flags, choices)
    return out


def bash(parser: argparse.ArgumentParser) -> str:
    table = spec(parser)
    cases = []
    for name, (flags, choices) in table.items():
        opt_cases = "".join(
            f'            {flag}) COMPREPLY=($(compgen -W "{" ".join(values)}" -- "$cur")); return;;\n'
            for flag, values in choices.items()
            if flag
        )
        positional = " ".join(choices.get("", []))
        # a word after the subcommand: a flag, one of its fixed arguments (`bash`), or a file
        otherwise = (
            f'COMPREPLY=($(compgen -W "{positional}" -- "$cur"))'
            if positional
            else 'COMPREPLY=($(compgen -f -- "$cur"))'
        )
        cases.append(
            f"        {name})\n"
            f'          case "$prev" in\n{opt_cases}          esac\n'
            f'          if [[ "$cur" == -* ]]; then\n'
            f'            COMPREPLY=($(compgen -W "{" ".join(flags)}" -- "$cur"))\n'
            f"          else\n"
            f"            {otherwise}\n"
            f"          fi;;\n"
        )
    commands = " ".join(table)
    return (
        "# bash completion for knscale: source <(knscale completion bash)\n"
        "_knscale() {\n"
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i\n'
        "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
        '    [[ "${COMP_WORDS[i]}" != -* ]] && { cmd="${COMP_WORDS[i]}"; break; }\n'
        "  done\n"
        '  if [[ -z "$cmd" ]]; then\n'
        f'    COMPREPLY=($(compgen -W "{commands} --help --version" -- "$cur")); return\n'
        "  fi\n"
        '  case "$cmd" in\n' + "".join(cases) + "  esac\n"
        "}\n"
        "complete -o default -F _knscale knscale\n"
    )


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_quote(text: str) -> str:
    """Text inside a single-quoted `_arguments` spec: quotes closed and reopened, brackets escaped
    (a `]` would end the description); colons are literal inside the brackets."""
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]")


def zsh(parser: argparse.ArgumentParser) -> str:
    subs = _subparsers(parser)
    table = spec(parser)
    # `_describe` items are `name:description`, each one single-quoted word for the shell
    helps = {a.dest: a.help or "" for a in _choices_actions(parser)}
    described = " ".join(_single_quoted(f"{name}:{helps.get(name, '')}") for name in table)
    functions = []
    for name, (_flags, choices) in table.items():
        lines = []
        for action in subs[name]._actions:
            if not action.option_strings:
                continue
            text = _zsh_quote(action.help or "")
            values = choices.get(action.option_strings[0])
            takes = action.nargs != 0
            arg = f":value:({' '.join(values)})" if values else (":file:_files" if takes else "")
            for flag in action.option_strings:
                lines.append(f"    '{flag}[{text}]{arg}'")
        rest = choices.get("")
        lines.append(f"    '*:arg:({' '.join(rest)})'" if rest else "    '*:file:_files'")
        functions.append(
            f"_knscale_{name.replace('-', '_')}() {{\n  _arguments \\\n" + " \\\n".join(lines) + "\n}\n"
        )
    return (
        '#compdef knscale\n# zsh completion for knscale: knscale completion zsh > "${fpath[1]}/_knscale"\n'
        + "".join(functions)
        + "_knscale() {\n"
        "  local line state\n"
        "  _arguments -C '1:command:->cmd' '*::arg:->args'\n"
        '  case "$state" in\n'
        f"    cmd) local -a cmds; cmds=({described}); _describe command cmds;;\n"
        "    args) (( $+functions[_knscale_${line[1]//-/_}] )) && _knscale_${line[1]//-/_};;\n"
        "  esac\n"
        "}\n"
        'if [[ "$funcstack[1]" == "_knscale" ]]; then _knscale "$@"; else compdef _knscale knscale; fi\n'
    )


def _choices_actions(parser: argparse.ArgumentParser) -> list[Any]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action._choices_actions)
    return []


def run(args: argparse.Namespace) -> int:
    from knscale.cli import build_parser  # the whole parser, built the way `knscale` builds it

    parser = build_parser()
    sys.stdout.write(bash(parser) if args.shell == "bash" else zsh(parser))
    return 0
