"""YAML as the runbook and scenario files are read: safe, no duplicate keys, bounded nesting.

PyYAML's SafeLoader keeps the last of two equal keys without a word (a typo'd
override wins silently) and composes nodes recursively, so a file nested about
1,000 levels deep ends in RecursionError instead of a parse error. Both come
out of :func:`parse` as ``yaml.YAMLError`` with a line number.

With libyaml (PyYAML's wheels carry it) the document is parsed in C, about
twenty times faster than PyYAML's own parser: its events are read once to
bound the nesting (the C composer cannot be stopped midway), then composed.
"""

from __future__ import annotations

from typing import Any

import yaml

# Deeper than any runbook or scenario needs (they nest under ten levels), far below Python's recursion limit.
MAX_DEPTH = 64


class StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark) from None
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


StrictCLoader = None
if getattr(yaml, "__with_libyaml__", False):
    class StrictCLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        pass

    StrictCLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _bounded(text: str) -> None:
    """ComposerError when collections nest deeper than the pure-Python loader allows nodes to."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth >= MAX_DEPTH:
                    raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml's own limit, met while it reads ahead: the same refusal in this module's words.
        if "nesting depth" not in str(exc.problem):
            raise
        raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", exc.problem_mark) from None


def parse(text: str) -> Any:
    """The document in ``text``; ``yaml.YAMLError`` (most with a ``problem_mark``) when it is not one."""
    if StrictCLoader is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: only the pure-Python reader reports them as a YAML error
        else:
            _bounded(text)
            return yaml.load(text, Loader=StrictCLoader)  # noqa: S506 - a CSafeLoader subclass
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
