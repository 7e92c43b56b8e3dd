"""Package-manager adapters: detect projects, plan monitored phases, attribute events to packages."""

from tracehound.ecosystems.interface import (
    PHASES,
    Dependency,
    DependencyIndex,
    Ecosystem,
    PhasePlan,
    PlanContext,
    Project,
    ProjectError,
)
from tracehound.ecosystems.registry import ADAPTERS, adapter_for, detect_projects

__all__ = [
    "ADAPTERS",
    "PHASES",
    "Dependency",
    "DependencyIndex",
    "Ecosystem",
    "PhasePlan",
    "PlanContext",
    "Project",
    "ProjectError",
    "adapter_for",
    "detect_projects",
]
