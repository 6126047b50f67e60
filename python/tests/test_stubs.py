"""The type stubs and docstrings: every public name has a stub and a docstring, and every stubbed
member exists at run time, so the stubs cannot drift from the extension."""

import ast
import inspect
from pathlib import Path

import deepdecipher

STUBS = ast.parse((Path(deepdecipher.__file__).parent / "__init__.pyi").read_text())


def stubbed():
    classes, functions = {}, set()
    for node in STUBS.body:
        if isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            classes[node.name] = members
        elif isinstance(node, ast.FunctionDef):
            functions.add(node.name)
    return classes, functions


def test_every_public_name_is_stubbed_and_documented():
    classes, functions = stubbed()
    for name in deepdecipher.__all__:
        if name == "__version__":
            continue
        value = getattr(deepdecipher, name)
        assert name in classes or name in functions, f"{name} has no stub"
        assert inspect.getdoc(value), f"{name} has no docstring"


def test_every_stubbed_member_exists_and_public_members_are_stubbed():
    classes, functions = stubbed()
    for name in functions:
        assert callable(getattr(deepdecipher, name)), name
    for name, members in classes.items():
        cls = getattr(deepdecipher, name)
        for member in members:
            assert hasattr(cls, member) or member in {"__init__", "__iter__"}, f"{name}.{member} is stubbed but missing"
        public = {m for m in dir(cls) if not m.startswith("_")}
        inherited = set()
        for base in cls.__mro__[1:]:
            inherited |= set(dir(base)) if base.__module__ == "builtins" else classes.get(base.__name__, set())
        missing = public - members - inherited
        assert not missing, f"{name} has members without stubs: {missing}"
        for member in public - inherited:
            assert inspect.getdoc(getattr(cls, member)), f"{name}.{member} has no docstring"
