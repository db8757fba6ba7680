"""The seed's layering: model ← data ← train ← utils ← main. A lower layer never imports a higher one."""
import ast
from pathlib import Path

import torch_handle

PKG = Path(torch_handle.__file__).parent
LAYERS = ["model", "data", "train", "utils", "main"]


def layer_of(module: str) -> int | None:
    "Layer index of a `torch_handle.X...` module name, None for anything outside the layers."
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "torch_handle" and parts[1] in LAYERS else None


def imported_modules(path: Path) -> set[str]:
    "Absolute names of every module `path` imports (relative imports resolved)."
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.add(".".join(p for p in (base, node.module) if p))
    return names


def test_lower_layers_never_import_higher_ones():
    violations = []
    for path in PKG.rglob("*.py"):
        own = layer_of(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
        if own is None:
            continue
        for mod in imported_modules(path):
            other = layer_of(mod)
            if other is not None and other > own:
                violations.append(f"{path.relative_to(PKG.parent)} imports {mod}")
    assert not violations, "\n".join(violations)


def test_the_checker_sees_relative_imports(tmp_path):
    # nbdev writes package-internal imports as relative ones: make sure they resolve to absolute names.
    model_file = PKG / "model" / "transformer.py"
    assert "torch_handle.model.layers" in imported_modules(model_file)
    assert layer_of("torch_handle.train.ddp_trainer") > layer_of("torch_handle.model.layers")


def test_every_layer1_name_imports_from_the_model_package():
    from torch_handle import model
    for name in ["PositionalEncoding", "TransformerEmbedding", "ScaledDotProductAttention", "MultiHeadAttention",
                 "PositionwiseFeedForward", "TransformerBlock", "Transformer", "TransformerEncoder",
                 "TransformerDecoder"]:
        assert hasattr(model, name), name
