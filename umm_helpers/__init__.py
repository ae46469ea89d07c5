"""umm_helpers: robust multi-modal learning when modalities go missing (UME-MMA).

``import umm_helpers as umm`` is the façade: every name a notebook needs is reachable from it,
resolved lazily, so importing the package only defines names (nothing is seeded, downloaded,
probed or even imported from PyTorch until a name is used). The layers underneath:
``data`` -> ``core`` -> ``engine`` -> ``methods`` -> ``course`` / ``tools``.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

# name -> "module" (the name is an attribute of it) or "module:" (the name is the module).
_EXPORTS = {
    # runtime settings (notebook 00)
    "set_seed": "settings", "get_device": "settings", "data_dir": "settings",
    "runs_dir": "settings", "seed_offset": "settings", "course_seeds": "settings",
    "progress_enabled": "settings",
    # data (notebook 00)
    "MultiModalDataset": "data", "Split": "data", "load_dataset": "data",
    "available_datasets": "data", "register_dataset": "data",
    "synthetic": "data.synthetic:", "av_digits": "data.av_digits:",
    # core: the missing-modality protocol, models, scoring (notebooks 00, 03, 05)
    "MaskTable": "core.missing", "parse_condition": "core.missing",
    "apply_presence": "core.missing", "training_presence": "core.missing",
    "mma_presence": "core.missing", "array_to_presence": "core.missing",
    "missing": "core.missing:",
    "LateFusionModel": "core.fusion", "ConcatFusionModel": "core.fusion",
    "EarlyFusionModel": "core.fusion",
    "ConvEncoder": "core.encoders", "MLPEncoder": "core.encoders",
    "TorchvisionEncoder": "core.encoders", "default_encoders": "core.encoders",
    "evaluate": "core.scoring", "predict_logits": "core.scoring",
    "score_logits": "core.scoring", "aurc": "core.scoring", "gap_to_ceiling": "core.scoring",
    "PatternLogits": "core.patterns", "sweep": "core.patterns",
    "text": "core.text:",
    # engine (notebook 02, engineering appendix)
    "TrainConfig": "engine.config", "RESUME_FREE_FIELDS": "engine.config",
    "Trainer": "engine.trainer", "fit": "engine.trainer",
    "CapturedStep": "engine.capture", "RecordedStep": "engine.capture",
    "CheckpointError": "engine.checkpoint",
    # methods (notebooks 02-07)
    "METHODS": "methods.registry", "all_methods": "methods.registry",
    "run_method": "methods.run", "cached_run": "methods.run", "new_model": "methods.run",
    "Run": "methods.run", "RunCache": "methods.cache",
    "compare": "methods.compare", "summarize": "methods.compare",
    "run_seeds": "methods.parallel",
    "cache_features": "methods.feature_cache",
    # course
    "theory": "course.theory:", "plots": "course.plots:", "probes": "course.probes:",
    "widgets": "course.widgets:", "explorer": "course.explorer:",
    "calibration": "course.calibration:",
    "projection": "course.projection:", "group_accuracy": "course.group_accuracy:",
    "ceiling_gap": "course.ceiling_gap:", "claims": "course.claims:",
    # tools
    "bench": "tools.bench", "method_times": "tools.bench",
}


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'umm_helpers' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = import_module(f"umm_helpers.{module_name}")
    return module if target.endswith(":") else getattr(module, name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
