"""What a scenario file may say: the allowed values and the patterns of names and references."""

from __future__ import annotations

import re

SERVICE_STATUSES = ("RUNNING", "OPERATION_IN_PROGRESS", "CREATE_FAILED", "PAUSED", "DELETE_FAILED")
OPERATION_TYPES = (
    "CREATE_SERVICE",
    "START_DEPLOYMENT",
    "UPDATE_SERVICE",
    "PAUSE_SERVICE",
    "RESUME_SERVICE",
    "DELETE_SERVICE",
)
# App Runner's CodeConfigurationValues.Runtime (botocore model apprunner/2020-05-15).
CODE_RUNTIMES = ("PYTHON_3", "NODEJS_12", "NODEJS_14", "CORRETTO_8", "CORRETTO_11", "NODEJS_16", "GO_1", "DOTNET_6",
                 "PHP_81", "RUBY_31", "PYTHON_311", "NODEJS_18", "NODEJS_22")
SECRET_STORES = ("secretsmanager", "ssm")
OPERATION_STATUSES = (
    "PENDING",
    "IN_PROGRESS",
    "FAILED",
    "SUCCEEDED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_SUCCEEDED",
)
IN_FLIGHT = ("PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
# aurora-* engines make an Aurora cluster (the database's id) with one writer instance, <id>-1.
DB_ENGINES = {"postgres": 5432, "mysql": 3306, "mariadb": 3306, "aurora-postgresql": 5432, "aurora-mysql": 3306}
CACHE_ENGINES = ("redis", "valkey")
# replication-group: a Redis OSS/Valkey replication group; cluster: a standalone cache cluster
# (one node, no replication group); serverless: an ElastiCache Serverless cache (TLS only).
CACHE_MODES = ("replication-group", "cluster", "serverless")
PROXY_ENGINE_FAMILIES = {"POSTGRESQL": ("postgres", "aurora-postgresql"), "MYSQL": ("mysql", "mariadb", "aurora-mysql")}
FOREIGN_GROUP = re.compile(r"^(\d{12})/(sg-[0-9a-f]{8,17})$")
FOREIGN_PREFIX_LIST = re.compile(r"^pl-[0-9a-f]{8,17}$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
PLACEHOLDER_BODY = re.compile(r"^(database|cache|proxy)\.([A-Za-z0-9-]+)\.(address|port)$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{3,39}$")
RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
