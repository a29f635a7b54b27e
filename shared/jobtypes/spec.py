"""What a job type is: one declaration, from which everything else about it is derived.

The topology declares a queue `jobs.<name>` per declaration; the gateway builds
`POST /jobs/<name>` from it (a JSON body, or a multipart form when the job takes an upload);
the CLI builds `jobsuite submit <name>` from its options; workers validate a job's params with
its model. The gateway enforces its limits with its `check` (and its `policy`) before it
accepts a job, and every worker runs the same two on each job it takes, and on every
follow-up in its `then` (shared/limits.py), so a job put straight on the queue gets no further
than one sent through the gateway. The service that runs it binds its handler to it in its
own `__main__`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from shared.config import Settings
from shared.errors import JobsuiteError

ParamsT = TypeVar("ParamsT", bound=BaseModel)
LimitsT = TypeVar("LimitsT")


class ParamsRefused(JobsuiteError):
    """Params that fit their model but not the limits: the gateway answers 422 naming
    `field` with `kind`; a handler that checks again fails the job."""

    def __init__(self, field: Sequence[str | int], message: str, kind: str) -> None:
        super().__init__(message)
        self.field = tuple(field)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.field)
        return f"{where}: {self.message}" if where else self.message


def no_limits(_settings: Settings) -> None:
    """For a job type whose params have no limits beyond their model."""
    return None


def nothing_to_check(_params: BaseModel, _limits: object) -> None:
    return None


@dataclass(frozen=True)
class CliOption:
    """One option of `jobsuite submit <type>` and the request field it fills."""

    flag: str  # "--width"
    field: str  # the params (or form) field it fills, e.g. "width"
    help: str
    type: type = str  # str, int or float
    many: bool = False  # repeatable: the field gets a list
    required: bool = False
    # "value": the option's value; "json_file": JSON read from the file (- is stdin);
    # "text_file": the file's text. Two options may fill one field, never both at once.
    reads: Literal["value", "json_file", "text_file"] = "value"


@dataclass(frozen=True)
class FormField:
    """A multipart form field whose text differs from its params field (e.g. `sizes` given
    as `800x600` strings): its annotation in the form, and how its value becomes the
    params value (raising ParamsRefused naming the item)."""

    annotation: Any
    parse: Callable[[Any], Any]
    description: str


@dataclass(frozen=True)
class Upload:
    """The job's input is one uploaded file, sent as the `file` field of a multipart form
    beside the params; the gateway checks it is an image it may take, by its bytes."""

    description: str


@dataclass(frozen=True)
class JobTypeSpec(Generic[ParamsT, LimitsT]):
    name: str  # routing key, queue `jobs.<name>`, `POST /jobs/<name>`, `jobsuite submit <name>`
    service: str  # the service that runs it (its folder under services/)
    summary: str  # one line for the API docs, the CLI's help and docs
    params: type[ParamsT]  # what a job's params must be: workers validate with it
    limits: Callable[[Settings], LimitsT]  # its limits, read from the settings
    # Raises ParamsRefused when params go over a limit: the gateway calls it (422), and every
    # worker before it takes a job (shared/limits.py), for the job and each follow-up.
    check: Callable[[ParamsT, LimitsT], None]
    # What the gateway accepts (stricter than `params` where a worker's own checks would
    # refuse later with more detail, e.g. mail addresses): by default `params`.
    request: type[BaseModel] | None = None
    upload: Upload | None = None  # None: the params come as a JSON body
    form: Mapping[str, FormField] = field(default_factory=dict)
    cli: tuple[CliOption, ...] = ()
    # Raises ParamsRefused when params ask for what this deployment forbids (mail to a domain
    # outside MAIL_ALLOWED_DOMAINS): the gateway answers 403, after every other check (the
    # 422s, then ownership's 404s); workers refuse the job as they do for `check`.
    policy: Callable[[ParamsT, LimitsT], None] = nothing_to_check

    @property
    def request_model(self) -> type[BaseModel]:
        return self.request or self.params

    def check_request(self, request: BaseModel, limits: Any) -> None:
        """`check` for a request model (a subclass of `params`, or `params` itself)."""
        assert isinstance(request, self.params)
        self.check(request, limits)

    def check_policy(self, request: BaseModel, limits: Any) -> None:
        """`policy` for a request model."""
        assert isinstance(request, self.params)
        self.policy(request, limits)
