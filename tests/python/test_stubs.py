"""The type stubs (hzshm/__init__.pyi, py.typed) and docstrings match the module."""
import ast
import os

import hzshm


def _stub():
    d = os.path.dirname(hzshm.__file__)
    assert os.path.exists(os.path.join(d, "py.typed"))
    with open(os.path.join(d, "__init__.pyi")) as f:
        return ast.parse(f.read())


def test_stub_declares_every_public_name():
    tree = _stub()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    assert set(hzshm.__all__) <= names


def test_stub_methods_match_the_classes():
    classes = {n.name: n for n in _stub().body if isinstance(n, ast.ClassDef)}
    for cls in (hzshm.Cache, hzshm.Session):
        stubbed = {m.name for m in classes[cls.__name__].body if isinstance(m, ast.FunctionDef)}
        public = {n for n in dir(cls) if not n.startswith("_")} | {"__enter__", "__exit__"}
        assert public - {"__init__"} <= stubbed | {"__init__"}, public - stubbed
        for n in public:
            assert getattr(cls, n).__doc__, f"{cls.__name__}.{n} has no docstring"
    for n in hzshm.__all__:
        obj = getattr(hzshm, n)
        if callable(obj):
            assert obj.__doc__, f"{n} has no docstring"
