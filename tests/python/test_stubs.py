"""The type stubs (hzshm/__init__.pyi, py.typed) and docstrings match the module."""
import ast
import inspect
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


def _stub_params(fn):
    """(name, kind) of a stub's def, without self."""
    a = fn.args
    out = [(x.arg, "POSITIONAL_ONLY") for x in a.posonlyargs] + [(x.arg, "POSITIONAL_OR_KEYWORD") for x in a.args]
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL"))
    out += [(x.arg, "KEYWORD_ONLY") for x in a.kwonlyargs]
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD"))
    return out[1:] if out and out[0][0] == "self" else out


def _runtime_params(obj):
    ps = list(inspect.signature(obj).parameters.values())
    if ps and ps[0].name == "self":
        ps = ps[1:]
    return [(p.name, p.kind.name) for p in ps]


def test_stub_signatures_match_the_module():
    """Each public callable takes its arguments as the stub says (names,
    positional-only or keyword): a call the type checker accepts works."""
    tree = _stub()
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    checked = []
    for name, fn in defs.items():
        obj = getattr(hzshm, name)
        assert _runtime_params(obj) == _stub_params(fn), name
        checked.append(name)
    for cls in (hzshm.Cache, hzshm.Session):
        methods = {}
        for m in classes[cls.__name__].body:  # the last of overloads: the one with every parameter
            if isinstance(m, ast.FunctionDef):
                methods[m.name] = m
        for name, fn in methods.items():
            if name.startswith("__") and name != "__init__":
                continue
            if any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list):
                continue
            obj = cls if name == "__init__" else getattr(cls, name)
            assert _runtime_params(obj) == _stub_params(fn), f"{cls.__name__}.{name}"
            checked.append(f"{cls.__name__}.{name}")
    assert {"strerror", "Session.get", "Session.set", "Session.has", "Cache.session", "Cache.__init__"} <= set(checked)


def test_calls_the_stub_allows(cache, sid):
    s = cache.session(sid)
    s.set(key="k", value=b"v", ttl=None)
    assert s.get("k", default=b"d") == b"v" and s.get("missing", default=b"d") == b"d"
    assert s.has("k") and hzshm.strerror(-30001) == "key not found"
