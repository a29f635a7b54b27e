"""Every job type, declared once (`spec.py` says what a declaration holds).

Adding one: a module here with its params model and its `JobTypeSpec`, a line in
`JOB_TYPES` below, its handler in the service that runs it, and one line in that service's
`__main__` binding the handler to it. The queue, the gateway route and the CLI command follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from shared.jobtypes.mail import MAIL
from shared.jobtypes.render import RENDER
from shared.jobtypes.resize import RESIZE
from shared.jobtypes.spec import JobTypeSpec, ParamsRefused

JOB_TYPES: tuple[JobTypeSpec[Any, Any], ...] = (RESIZE, RENDER, MAIL)
JOB_TYPE_NAMES: tuple[str, ...] = tuple(spec.name for spec in JOB_TYPES)
_BY_NAME = {spec.name: spec for spec in JOB_TYPES}

if TYPE_CHECKING:
    JobTypeName = str
else:
    # A Literal of the declared names: pydantic refuses any other ("Input should be
    # 'resize', 'render' or 'mail'").
    JobTypeName = Literal[JOB_TYPE_NAMES]


def job_type(name: str) -> JobTypeSpec[Any, Any]:
    """The declaration of `name`; KeyError for an unknown job type."""
    return _BY_NAME[name]


__all__ = [
    "JOB_TYPES",
    "JOB_TYPE_NAMES",
    "MAIL",
    "RENDER",
    "RESIZE",
    "JobTypeName",
    "JobTypeSpec",
    "ParamsRefused",
    "job_type",
]
