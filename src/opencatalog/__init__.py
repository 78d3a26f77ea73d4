"""opencatalog: a data catalog library.

``open_catalog()`` gives a catalog in memory, ``open_catalog("./folder")`` one on disk; its
services (``catalog.datasets``, ``.resources``, ``.organizations``, ``.groups``, ``.users``,
``.tokens``, ``.tags``, ``.activities``, ``.search``, ``.files``, ``.pipeline``, ``.jobs``,
``.health``) take the input classes exported here and return the domain classes exported
here.
"""

from opencatalog.bootstrap import open_catalog
from opencatalog.config import Settings
from opencatalog.domain.commands import (
    UNSET,
    DatasetInput,
    DatasetPatch,
    GroupInput,
    GroupPatch,
    ResourceInput,
    ResourcePatch,
    UserInput,
    UserPatch,
)
from opencatalog.domain.files import HealthStatus, LinkHealth, PipelineStatus, ResourceFile
from opencatalog.domain.jobs import Job, JobStatus, StepLog, StepStatus
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Capacity,
    Dataset,
    Group,
    Membership,
    Resource,
    State,
    Tag,
    User,
    Vocabulary,
)
from opencatalog.domain.permissions import Actor
from opencatalog.errors import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    Conflict,
    NotAuthorized,
    NotFound,
    OpenCatalogError,
    SearchQueryError,
    ValidationFailed,
)
from opencatalog.services.catalog import Catalog
from opencatalog.services.datasets import BulkResult, Page

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "Activity",
    "Actor",
    "AlreadyExists",
    "ApiToken",
    "BackendError",
    "BulkResult",
    "Capacity",
    "Catalog",
    "ConfigurationError",
    "Conflict",
    "Dataset",
    "DatasetInput",
    "DatasetPatch",
    "Group",
    "GroupInput",
    "GroupPatch",
    "HealthStatus",
    "Job",
    "JobStatus",
    "LinkHealth",
    "Membership",
    "NotAuthorized",
    "NotFound",
    "OpenCatalogError",
    "Page",
    "PipelineStatus",
    "Resource",
    "ResourceFile",
    "ResourceInput",
    "ResourcePatch",
    "SearchQueryError",
    "Settings",
    "State",
    "StepLog",
    "StepStatus",
    "Tag",
    "User",
    "UserInput",
    "UserPatch",
    "ValidationFailed",
    "Vocabulary",
    "__version__",
    "open_catalog",
]
