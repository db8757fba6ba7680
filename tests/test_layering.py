"""The layering: model, data ← train ← utils ← labs ← main. A lower layer never imports a higher one; the original
design's key names import from their original modules."""
import ast
from pathlib import Path

import torch_handle

PKG = Path(torch_handle.__file__).parent
LAYERS = ["model", "data", "train", "utils", "labs", "main"]


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


KEY_NAMES = {                      # the original design's names, where its readers look for them
    "torch_handle.model.embeddings": ["PositionalEncoding", "TransformerEmbedding"],
    "torch_handle.model.attention": ["ScaledDotProductAttention", "MultiHeadAttention"],
    "torch_handle.model.layers": ["PositionwiseFeedForward", "TransformerBlock"],
    "torch_handle.model.transformer": ["Transformer", "TransformerEncoder", "TransformerDecoder"],
    "torch_handle.data.dataset": ["TranslationDataset", "create_vocabulary", "load_parallel_corpus"],
    "torch_handle.data.dataloader": ["create_distributed_dataloader", "DataLoaderWrapper"],
    "torch_handle.train.ddp_trainer": ["DDPTrainer", "ddp_setup", "cleanup"],
    "torch_handle.train.deepspeed_trainer": ["DeepSpeedTrainer", "get_deepspeed_config"],
    "torch_handle.utils.checkpoint": ["save_checkpoint", "load_checkpoint", "get_latest_checkpoint"],
    "torch_handle.utils.profiler": ["ProfilerWrapper", "analyze_communication_overlap"],
    "torch_handle.utils.gradient_checkpointing": ["apply_gradient_checkpointing", "checkpoint_sequential"],
    "torch_handle.main": ["main"],
}


def test_every_key_name_imports_from_its_original_module():
    import importlib
    missing = [f"{module}.{name}" for module, names in KEY_NAMES.items() for name in names
               if not hasattr(importlib.import_module(module), name)]
    assert not missing, missing


def test_every_model_name_imports_from_the_model_package():
    from torch_handle import model
    for name in KEY_NAMES["torch_handle.model.embeddings"] + KEY_NAMES["torch_handle.model.attention"] + \
            KEY_NAMES["torch_handle.model.layers"] + KEY_NAMES["torch_handle.model.transformer"]:
        assert hasattr(model, name), name


def test_the_config_files_ship_with_the_package():
    config = PKG / "config"
    assert sorted(p.name for p in config.iterdir() if p.suffix in (".json", ".yaml")) == \
        ["ds_config_stage1.json", "ds_config_stage2.json", "ds_config_stage3.json", "model_config.yaml"]
