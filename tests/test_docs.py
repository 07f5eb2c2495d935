"""The documentation works: the README's code runs, the "Writing a layer" example passes its checks, the site
builds without a warning, and every public class and function has a docstring with its arguments.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import os
import pathlib
import re
import runpy
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The modules of the API reference (docs/api/), whose public names must be documented.
PUBLIC_MODULES = [
    "neuro",
    "neuro.models",
    "neuro.models.model",
    "neuro.models.network",
    "neuro.graph",
    "neuro.training.loop",
    "neuro.training.step",
    "neuro.training.evaluation",
    "neuro.training.adapters",
    "neuro.training.history",
    "neuro.layers",
    "neuro.activations",
    "neuro.losses",
    "neuro.optimizers",
    "neuro.schedules",
    "neuro.initializers",
    "neuro.regularizers",
    "neuro.metrics",
    "neuro.callbacks",
    "neuro.data",
    "neuro.backend",
    "neuro.functional",
    "neuro.head",
    "neuro.registry",
    "neuro.io",
    "neuro.onnx",
    "neuro.gradcheck",
    "neuro.errors",
    "neuro.distributed",
    "neuro.sklearn",
]


def _load(name: str, path: pathlib.Path) -> ModuleType:
    """Import a file as module ``name`` once (a second import would register its classes again)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- README ---------------------------------------------------------------------------------------------------
def _python_blocks(markdown: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"^```python\n(.*?)^```", markdown, re.M | re.S)]


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    blocks = _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    assert "load_digits" in blocks[0], "the quickstart must load real data"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    start = time.perf_counter()
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            pytest.fail(f"README.md python block {i + 1} failed: {type(exc).__name__}: {exc}\n{block}")
    assert time.perf_counter() - start < 60, "the README's code should run in seconds"
    result = namespace["net"].evaluate(namespace["x_test"], namespace["y_test"])
    assert result["accuracy"] > 0.8, result


#: Guide pages whose python blocks are run, in order, in one namespace (each page on its own).
RUNNABLE_PAGES = ["docs/guide/graphs.md", "docs/guide/sequences.md", "docs/guide/migration.md"]


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_guide_page_python_blocks_run_in_order(page, tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((ROOT / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no ```python block"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__guide__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page} python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            pytest.fail(f"{page} python block {i + 1} failed: {type(exc).__name__}: {exc}\n{block}")
    capsys.readouterr()


def test_getting_started_first_network_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(ROOT / "docs" / "examples" / "first_network.py"), run_name="__docs__")
    capsys.readouterr()
    assert namespace["net"].evaluate(namespace["x_test"], namespace["y_test"])["accuracy"] > 0.8


# -- "Writing a layer" ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scale_layer() -> Iterator[ModuleType]:
    """The example's module; its ``Scale`` leaves the registry again afterwards, so no later test sees it."""
    from neuro import registry

    module = _load("neuro_docs_scale_layer", ROOT / "docs" / "examples" / "scale_layer.py")
    yield module
    table = registry._classes["layer"]
    if table.get(registry.normalize("Scale")) is module.Scale:
        del table[registry.normalize("Scale")]
    sys.modules.pop("neuro_docs_scale_layer", None)


def test_scale_layer_gradient_check(scale_layer):
    report = scale_layer.check()
    assert report.max_error < 1e-6, report
    assert set(report.errors) == {"input", "scale"}


def test_scale_layer_save_load_round_trip(scale_layer, tmp_path):
    trained, loaded = scale_layer.train_save_load(str(tmp_path / "scale.h5"))
    np.testing.assert_array_equal(trained, loaded)
    import neuro

    net = neuro.Network.load(tmp_path / "scale.h5")
    assert type(net.layers[0]) is scale_layer.Scale
    assert net.layers[0].get_config()["scale_initializer"] == {"class": "Ones", "config": {}}


BATTERY_CHECKS = [
    "test_output_shape",
    "test_finite_difference_gradients",
    "test_inference_keeps_nothing",
    "test_two_calls_then_backwards_in_reverse_order",
    "test_inputs_and_gradients_are_never_modified_and_views_are_fine",
    "test_need_input_grad_false",
    "test_float32_stays_float32",
    "test_config_round_trip",
    "test_save_load_round_trip",
    "test_strict_device_equals_numpy_without_host_reads",
    "test_values_and_gradients_match_pytorch",
]


@pytest.mark.parametrize("check", BATTERY_CHECKS)
def test_scale_layer_passes_the_layer_battery(check, scale_layer, tmp_path, request):
    """Run the battery's own checks on the row that the page shows."""
    battery = _load("neuro_docs_battery", ROOT / "tests" / "layers" / "test_battery.py")
    case = scale_layer.battery_case(battery.Case)
    fn = getattr(battery, check)
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {"case": case}
    if "tmp_path" in params:
        kwargs["tmp_path"] = tmp_path
    if "torch" in params:
        kwargs["torch"] = request.getfixturevalue("torch")
    if "assert_unchanged" in params:
        kwargs["assert_unchanged"] = request.getfixturevalue("assert_unchanged")
    if "dtype" in params:
        for dtype in (np.float32, np.float64):
            fn(**kwargs, dtype=dtype)
    else:
        fn(**kwargs)


# -- the site -------------------------------------------------------------------------------------------------
def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            "mkdocs.yml",
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    warnings = [
        line for line in (proc.stdout + proc.stderr).splitlines() if "WARNING" in line or "ERROR" in line
    ]
    assert proc.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        warnings or [proc.stderr[-3000:]]
    )
    for page in (
        "index.html",
        "writing-a-layer/index.html",
        "guide/conventions/index.html",
        "api/models/index.html",
    ):
        assert (tmp_path / "site" / page).is_file(), page
    conventions = (tmp_path / "site" / "guide" / "conventions" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in conventions  # the formulas are marked for MathJax
    layer_page = (tmp_path / "site" / "writing-a-layer" / "index.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", layer_page)  # highlighted code is split into tags
    assert "--8&lt;--" not in layer_page and "class Scale" in text  # the snippets were included


def test_every_public_module_has_an_api_page():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in PUBLIC_MODULES:
        page = "neuro" if name == "neuro" else name.split(".")[1]  # a package's modules share its page
        lines = (ROOT / "docs" / "api" / f"{page}.md").read_text(encoding="utf-8").splitlines()
        assert lines.count(f"::: {name}") == 1, f"docs/api/{page}.md must render ::: {name}"
        assert f"api/{page}.md" in nav, name


# -- docstring coverage ---------------------------------------------------------------------------------------
_SECTION = re.compile(r"^(?P<indent>\s*)(?P<kind>Args|Arguments|Parameters|Attributes):\s*$")


def _entries(doc: str, kinds: tuple[str, ...] = ("Args", "Arguments", "Parameters")) -> list[str] | None:
    """The entry heads (the text before the colon) of the docstring's ``Args:`` section, or of another
    section kind; ``None`` when the docstring has no such section."""
    lines = inspect.cleandoc(doc).splitlines()
    found = False
    heads: list[str] = []
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if not m or m.group("kind") not in kinds:
            continue
        found = True
        indent = len(m.group("indent"))
        entry_indent: int | None = None
        for body in lines[i + 1 :]:
            if not body.strip():
                continue
            level = len(body) - len(body.lstrip())
            if level <= indent:
                break
            entry_indent = level if entry_indent is None else entry_indent
            if level == entry_indent and ":" in body:
                heads.append(re.sub(r"\s*\(.*", "", body.split(":", 1)[0]).strip())
    return heads if found else None


def _documented_args(doc: str) -> set[str] | None:
    """The argument names of the docstring's ``Args:`` section (``None`` when it has none). An entry names
    one argument (``name:`` or ``name (type):``, ``*args:`` and ``**kwargs:`` included), as mkdocstrings
    reads it."""
    heads = _entries(doc)
    return None if heads is None else {h.lstrip("*") for h in heads}


def _where(obj: Any) -> str:
    try:
        target = inspect.unwrap(obj) if callable(obj) and not inspect.isclass(obj) else obj
        path = pathlib.Path(inspect.getsourcefile(target)).resolve()
        line = inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        return "?"
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return f"{path}:{line}"


def _is_abstract(fn: Any) -> bool:
    """True for a method that only raises NotImplementedError (or is marked abstract)."""
    if getattr(fn, "__isabstractmethod__", False):
        return True
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return True
    return all(
        isinstance(s, ast.Raise)
        and "NotImplementedError" in ast.unparse(s.exc if s.exc is not None else ast.Constant(""))
        for s in body
    )


def _own_doc(obj: Any) -> str | None:
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
        return None  # the signature that @dataclass writes when there is no docstring
    return doc if doc and doc.strip() else None


def _arguments(fn: Any, method: bool) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    if method and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


def _unwrap(attr: Any) -> Any:
    if isinstance(attr, (staticmethod, classmethod)):
        return attr.__func__
    if isinstance(attr, property):
        return attr.fget
    return attr if inspect.isfunction(attr) else None


def _base_documents(klass: type, name: str) -> bool:
    """Whether a base class of ``klass`` defines ``name`` with a docstring (the override inherits it)."""
    for base in klass.__mro__[1:]:
        if name in vars(base):
            fn = _unwrap(vars(base)[name])
            if fn is not None and _own_doc(fn):
                return True
    return False


class _Coverage:
    """Collects ``(file:line, problem)`` pairs while walking classes and functions, each object once."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        self.seen: set[int] = set()

    def report(self, obj: Any, name: str, problem: str) -> None:
        self.problems.append((_where(obj), f"{name}: {problem}"))

    def function(self, fn: Any, name: str, method: bool = False, owner: type | None = None) -> None:
        """Check a function or method (``owner``: the class that defines it) for its docstring and Args."""
        if id(fn) in self.seen:
            return
        self.seen.add(id(fn))
        if owner is not None and _base_documents(owner, fn.__name__):
            return  # a documented override: it inherits the base method's docstring
        doc = _own_doc(fn)
        if doc is None:
            self.report(fn, name, "no docstring")
            return
        args = _arguments(fn, method)
        if args:
            self.arguments(fn, name, args, doc)

    def arguments(self, obj: Any, name: str, args: list[str], *docs: str | None) -> None:
        """Report the arguments that no ``Args:`` section of ``docs`` documents (one entry per name)."""
        sections = [h for d in docs if d for h in (_entries(d) or [])]
        has_section = any(d and _entries(d) is not None for d in docs)
        several = [h for h in sections if "," in h]
        if several:
            self.report(obj, name, f"Args: entries {several} name several arguments; give each its own entry")
        documented = {h.lstrip("*") for h in sections}
        missing = [a for a in args if a not in documented]
        if missing and not has_section:
            self.report(obj, name, f"no Args: section for its arguments {missing}")
        elif missing:
            self.report(obj, name, f"Args: does not mention {missing}")

    def klass(self, cls: type, name: str) -> None:
        """Check a class: its docstring, its constructor's arguments, 'Gradient' when it has a backward, and
        its public methods and properties (also those it inherits from neuro's private bases)."""
        if id(cls) in self.seen:
            return
        self.seen.add(id(cls))
        doc = _own_doc(cls)
        if doc is None:
            self.report(cls, name, "no docstring")
        init = vars(cls).get("__init__")
        if doc is not None and inspect.isfunction(init):
            args = _arguments(init, method=True)
            # the constructor's arguments go in the class docstring (or __init__'s); a base class that
            # documents the same arguments documents them for its subclasses too
            docs = [
                doc,
                _own_doc(init),
                *(_own_doc(b) for b in cls.__mro__[1:] if b.__module__.startswith("neuro")),
            ]
            if dataclasses.is_dataclass(cls):  # fields are documented as attributes
                attributes = _entries(doc, ("Attributes",)) or []
                args = [a for a in args if a not in {h.lstrip("*") for h in attributes}]
            if args:
                self.arguments(cls, f"{name}.__init__", args, *docs)
        backward = getattr(cls, "backward", None)
        if callable(backward) and not _is_abstract(backward) and "Gradient" not in (doc or ""):
            self.report(cls, name, "has a backward but its docstring has no 'Gradient' (the formula)")
        done: set[str] = set()
        for klass in cls.__mro__:
            if klass is object or not klass.__module__.startswith("neuro"):
                continue
            for attr_name, attr in vars(klass).items():
                if attr_name.startswith("_") or attr_name in done:
                    continue
                done.add(attr_name)
                fn = _unwrap(attr)
                if fn is None:
                    continue
                is_method = not isinstance(attr, staticmethod)
                self.function(fn, f"{klass.__qualname__}.{attr_name}", method=is_method, owner=klass)


def _public(module: ModuleType) -> list[tuple[str, Any]]:
    if hasattr(module, "__all__"):
        names = list(dict.fromkeys(module.__all__))
    else:
        names = [
            n
            for n, o in vars(module).items()
            if not n.startswith("_") and getattr(o, "__module__", None) == module.__name__
        ]
    return [(n, getattr(module, n)) for n in names]


def docstring_problems() -> list[str]:
    """Every public class, function and method of :data:`PUBLIC_MODULES` that lacks its documentation."""
    cov = _Coverage()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not _own_doc(module):
            cov.problems.append((_where(module), f"module {module_name}: no docstring"))
        for _name, obj in _public(module):
            if inspect.isclass(obj):
                cov.klass(obj, f"{obj.__module__}.{obj.__qualname__}")
            elif inspect.isfunction(obj):
                cov.function(obj, f"{obj.__module__}.{obj.__qualname__}")

    def key(item: tuple[str, str]) -> tuple[str, int, str]:
        path, _, line = item[0].rpartition(":")
        return (path, int(line) if line.isdigit() else 0, item[1])

    return [f"{where}: {what}" for where, what in sorted(set(cov.problems), key=key)]


def test_public_api_docstrings():
    problems = docstring_problems()
    assert not problems, f"{len(problems)} public names lack documentation:\n" + "\n".join(problems)


def test_docstring_checker_finds_what_it_should():
    """The checker itself: a missing docstring, an undocumented argument, a gradient-less backward."""

    class Good:
        """A class.

        Args:
            a: the first.
            b (int): the second.
            *c: the others.
        """

        def __init__(self, a: int, b: int, *c: int) -> None: ...

        def backward(self, grad: Any) -> Any:
            """Backward.

            Args:
                grad: dL/dy.
            """
            return grad

    cov = _Coverage()
    cov.klass(Good, "Good")
    assert [p for _, p in cov.problems] == [
        "Good: has a backward but its docstring has no 'Gradient' (the formula)"
    ]

    def f(x: int, y: int) -> None:
        """Do.

        Args:
            x: one.
        """

    def g(x: int) -> None:
        """No section."""

    def h(x: int) -> None:
        pass

    def k(x: int, y: int) -> None:
        """Two in one entry, which mkdocstrings cannot read.

        Args:
            x, y: the coordinates.
        """

    cov = _Coverage()
    for fn in (f, g, h, k):
        cov.function(fn, fn.__name__)
    assert [p for _, p in cov.problems] == [
        "f: Args: does not mention ['y']",
        "g: no Args: section for its arguments ['x']",
        "h: no docstring",
        "k: Args: entries ['x, y'] name several arguments; give each its own entry",
        "k: Args: does not mention ['x', 'y']",
    ]
