"""Model versions on disk: save (atomic), verify, load, list and activate; card signatures."""

from model.registry.store import (
    VersionInfo,
    activate_version,
    active_version,
    default_model_dir,
    list_versions,
    load_holdout,
    load_model,
    save_version,
)

__all__ = ["VersionInfo", "activate_version", "active_version", "default_model_dir", "list_versions",
           "load_holdout", "load_model", "save_version"]
