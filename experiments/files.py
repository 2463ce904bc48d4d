"""Reading the project's structured files (specs, bundles): JSON for .json, else YAML.

One reader, so every file a user hands us fails the same way: a missing file, an unreadable
one, one over its size cap, or a syntax error with its line and column, each as a `UserError`
that names the file.

Hostile input is bounded before it is built (a spec or bundle may come from anyone):
- Size: a spec file may hold at most `MAX_SPEC_BYTES` (256 KiB, the dashboard's upload cap:
  the largest legitimate spec, a few hundred LRs and knob values, is a few KiB) and a bundle
  `MAX_BUNDLE_BYTES` (16 MiB: a bundle lists every parameter of the target model, a few
  hundred bytes each, so even a model of tens of thousands of tensors fits). The cap is
  checked before the file is read, and at most cap + 1 bytes are ever read.
- Alias expansion: YAML aliases (`*a`) re-use a node without copying it, so a few hundred bytes
  of nested aliases (the "billion laughs") describe a document of billions of nodes; the parser
  builds it cheaply, and the first thing that walks it (validation, hashing, printing) exhausts
  memory. `parse_yaml` counts the nodes of the document *as expanded* (every alias counted with
  all it re-uses) before constructing anything, and refuses a document over `MAX_YAML_NODES`
  or one whose aliases form a cycle. A file's budget is one node per byte of its size cap,
  at most `MAX_YAML_NODES` (a spec: 262,144): aliases cannot make a document larger than an
  alias-free file under the cap could be. The budget is far above any real spec or bundle
  (thousands of nodes) and far below what exhausts a machine (~100 bytes a node).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from experiments.errors import UserError

YAML_SUFFIXES = (".yaml", ".yml")
# Size caps (bytes) of the files we read; MAX_SPEC_BYTES is also the dashboard's upload cap.
MAX_SPEC_BYTES = 256 * 1024
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
# Nodes a YAML document may expand to (scalars, sequences and mappings, aliases counted with
# everything they re-use).
MAX_YAML_NODES = 1_000_000
# A spec's node budget (one per byte of its cap): what an uploaded spec is parsed with too.
MAX_SPEC_NODES = min(MAX_YAML_NODES, MAX_SPEC_BYTES)


def is_yaml(path: str | Path) -> bool:
    """Whether `path` names a YAML file (.yaml/.yml); anything else is read as JSON."""
    return Path(path).suffix.lower() in YAML_SUFFIXES


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """The number of nodes of the document under `root` with every alias expanded, counting
    only up to just over `limit` (an alias bomb's true size is astronomical).

    A node reached through several aliases is counted once per path (what constructing, then
    walking, the data costs), but computed once (memoised by identity), so the count itself
    takes time linear in the file.

    Raises:
        ValueError: an alias refers to a node that contains it (an infinite document).
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()  # the nodes on the current path: meeting one again is a cycle
    # An explicit stack, not recursion: a deeply nested file must not overflow Python's stack.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            active.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            raise ValueError("an alias refers to a node that contains it (a recursive anchor)")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def parse_yaml(text: str, source: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse YAML text as plain data (safe tags only), with alias expansion bounded.

    Args:
        text: the document.
        source: what it is, for messages ("spec file x.yaml", "uploaded spec").
        max_nodes: the most nodes the document may expand to (module docstring).

    Returns:
        The parsed data (None for an empty document).

    Raises:
        UserError: a syntax error (with its line and column), more than one document, a
            document that expands past `max_nodes` nodes, or aliases that form a cycle.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, max_nodes)
        if size > max_nodes:
            raise UserError(f"{source}: the YAML expands to more than {max_nodes:,} values "
                            "(its aliases, `*name`, re-use nested anchors): refused; write the "
                            "values out, without aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{source}: YAML syntax error{where}: {problem}") from None
    except ValueError as exc:
        raise UserError(f"{source}: {exc}: refused; write the values out") from None
    except RecursionError:
        raise UserError(f"{source}: the YAML is nested too deeply to read") from None
    finally:
        loader.dispose()


def read_capped(path: str | Path, what: str, max_bytes: int) -> str:
    """The text of `path`, refused when it is over `max_bytes` (never reading more than that).

    Raises:
        UserError: missing, unreadable, not UTF-8, or over the cap (the message says the cap).
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)  # a FIFO or a growing file: never more than this
    except FileNotFoundError:
        raise UserError(f"{what} {p} does not exist: check the path") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {p}: {exc}") from None
    if len(raw) > max_bytes:
        raise UserError(f"{what} {p} is over the {max_bytes:,}-byte limit of a {what}: refused "
                        "(a real one is far smaller; is it the right file?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {what} {p}: not UTF-8 text ({exc})") from None


def parse_structured(text: str, source: str, as_json: bool = False,
                     max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse JSON (`as_json`) or YAML text (YAML also reads JSON text), bounded as
    `parse_yaml`.

    Raises:
        UserError: a syntax error with its line, or a YAML document over the node budget.
    """
    if not as_json:
        return parse_yaml(text, source, max_nodes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise UserError(f"{source}: the JSON is nested too deeply to read") from None


def read_structured(path: str | Path, what: str, max_bytes: int = MAX_SPEC_BYTES) -> Any:
    """Parse a JSON (.json) or YAML (any other suffix: YAML also reads JSON text) file.

    Args:
        path: the file.
        what: what the file is, for messages ("spec file", "bundle").
        max_bytes: the file's size cap (`MAX_SPEC_BYTES`; bundles pass `MAX_BUNDLE_BYTES`).

    Returns:
        The parsed data (a dict for a well-formed spec or bundle; callers check the shape).

    Raises:
        UserError: the file is missing, unreadable or over `max_bytes`, has a syntax error
            (with its line), or is a YAML document whose aliases expand past its node budget
            (module docstring).
    """
    p = Path(path)
    text = read_capped(p, what, max_bytes)
    return parse_structured(text, str(p), as_json=p.suffix.lower() == ".json",
                            max_nodes=min(MAX_YAML_NODES, max_bytes))
