"""``dsops.yaml`` → typed pydantic models, with errors that name file, line and key."""

from dsops.config.loader import load_config
from dsops.config.models import DatasetConfig, Expectation, ProjectConfig
from dsops.core.project import CONFIG_NAME

__all__ = ["CONFIG_NAME", "DatasetConfig", "Expectation", "ProjectConfig", "load_config"]
