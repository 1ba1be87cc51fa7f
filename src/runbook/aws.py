"""The one module that talks to AWS: sessions, clients, retries, errors, the read-only guard.

boto3 is imported here lazily, so that `runbook --help`, `list` and `show` start
without it. Endpoints come from boto3's own configuration: `AWS_ENDPOINT_URL`
and `AWS_ENDPOINT_URL_<SERVICE>` point the same code at the sandbox.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from typing import Any

from runbook.errors import AwsError, RunbookError, UsageError
from runbook.model import ApiCall

_READ_PREFIXES = ("Describe", "List", "Get")
# Reads whose names do not say so.
_READ_OPERATIONS = {"FilterLogEvents"}

# Error codes that mean "who are you?" rather than "you may not".
_CREDENTIAL_CODES = {
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "RequestExpired",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}


def is_read_operation(name: str) -> bool:
    """True for API operations (PascalCase, as IAM names them) that change nothing."""
    return name.startswith(_READ_PREFIXES) or name in _READ_OPERATIONS


class ReadOnlyViolation(RunbookError):
    """A mutating call was attempted by a read-only command: a bug, never sent."""


class EndpointUnreachable(AwsError):
    """No connection could be made: the call never reached AWS."""


class ApiError(AwsError):
    """AWS answered with an error the caller may know how to handle (by `code`)."""

    def __init__(self, message: str, code: str, request_id: str | None = None, retries: int = 0):
        super().__init__(message, retries=retries)
        self.code = code
        self.request_id = request_id


# AWS region names: partition prefix, direction, number (us-east-1, us-gov-west-1, eu-isoe-west-1, ap-southeast-7).
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


def _check_region(region: Any, source: str) -> None:
    """`source`: where the region came from, when the caller did not give it."""
    where = f" (from {source})" if source else ""
    if not isinstance(region, str):
        raise UsageError(f"invalid AWS region {region!r}{where}: expected a name such as us-east-1")
    if not _REGION.fullmatch(region):
        hint = f"; did you mean {region.strip().lower()}?" if _REGION.fullmatch(region.strip().lower()) else ""
        raise UsageError(f"invalid AWS region {region!r}{where}: expected a name such as us-east-1{hint}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = (text[0] if text else type(exc).__name__).rstrip(": ")
    return line if len(line) <= 160 else line[:157] + "..."


def iam_action(service: str, operation_name: str) -> str:
    prefix = {"elasticache": "elasticache", "rds": "rds", "ec2": "ec2", "logs": "logs", "sts": "sts"}.get(service, service)
    return f"{prefix}:{operation_name}"


def _PlainJsonFileLoader():
    """botocore's model loader, reading JSON into plain dicts instead of OrderedDicts.

    botocore parses each service's JSON model when its first client is built;
    with OrderedDict that is most of the cost (EC2's model: 82 ms, 40 ms with
    plain dicts, which keep insertion order anyway). Measured on `runbook
    check`: discovery 0.45 s -> 0.37 s.
    """
    import gzip
    import json
    import os

    from botocore.loaders import JSONFileLoader

    class PlainJsonFileLoader(JSONFileLoader):
        def load_file(self, file_path):
            # The same files, in the same order, as JSONFileLoader.load_file.
            for ext, opener in ((".json", open), (".json.gz", gzip.open)):
                if os.path.isfile(file_path + ext):
                    with opener(file_path + ext, "rb") as fp:
                        return json.loads(fp.read().decode("utf-8"))
            return None

    return PlainJsonFileLoader()


_LOADERS: dict[Any, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _shared_loader(data_path):
    """One model loader per data path for the whole process: botocore's loader caches each model it
    parses, so a second Aws (a re-run in the same process, the tests' hundreds) parses none again."""
    from botocore.loaders import create_loader

    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = create_loader(data_path)
            loader.file_loader = _PlainJsonFileLoader()  # before any model is loaded
            _LOADERS[data_path] = loader
        return loader


class Aws:
    """Clients for one region and profile, with call counting and an optional read-only guard."""

    def __init__(self, region: str | None = None, profile: str | None = None, *, read_only: bool = False):
        import boto3
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound

        core = botocore.session.get_session()
        # The AWS CLI v2 and the SDKs read AWS_REGION before AWS_DEFAULT_REGION; botocore reads only the latter.
        source = ""
        if region is None and os.environ.get("AWS_REGION"):
            region, source = os.environ["AWS_REGION"], "AWS_REGION"
        if region is not None:
            _check_region(region, source)
        try:
            # The profile is set first: building the model loader reads the profile's data_path.
            self.session = boto3.Session(region_name=region, profile_name=profile, botocore_session=core)
        except ProfileNotFound:
            raise UsageError(f"AWS profile {profile!r} not found in your AWS config") from None
        core.register_component("data_loader", _shared_loader(core.get_config_variable("data_path")))
        if not self.session.region_name:
            raise UsageError("no AWS region: pass --region or set AWS_REGION")
        if region is None:
            _check_region(self.session.region_name, "AWS_DEFAULT_REGION or your AWS config")
        self.region: str = self.session.region_name
        self.profile = profile
        self.read_only = read_only
        # Standard retry mode retries throttling with backoff; timeouts keep a
        # dead endpoint from hanging an emergency script.
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra="runbook",
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._attempts = threading.local()  # HTTP requests sent for the current call of this thread
        self.calls: Counter[str] = Counter()

    def client(self, service: str):
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self.session.client(service, config=self._config)
                client.meta.events.register("before-call", self._before_call)
                client.meta.events.register("before-send", self._before_send)
                self._clients[service] = client
            return client

    def _before_call(self, model, **_: Any) -> None:
        service = model.service_model.service_name
        # IAM names an action by the service's signing name, which is not always its client's name.
        prefix = model.service_model.signing_name or service
        if self.read_only and not is_read_operation(model.name):
            raise ReadOnlyViolation(
                f"refused {service}:{model.name}: this command is read-only and may only Describe, List or Get"
            )
        with self._lock:
            self.calls[f"{prefix}:{model.name}"] += 1

    def _before_send(self, **_: Any) -> None:
        # Each attempt botocore makes, retries included: after a retry an earlier attempt may have landed.
        self._attempts.count = getattr(self._attempts, "count", 0) + 1

    def _retries(self) -> int:
        return max(0, getattr(self._attempts, "count", 0) - 1)

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Send one call; AWS failures come back as AwsError with a verb phrase."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError as BotoConnectionError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.parsers import ResponseParserError

        client = self.client(service)
        method = getattr(client, operation)
        action = client.meta.method_to_api_mapping.get(operation, operation)
        self._attempts.count = 0
        try:
            return method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            message = error.get("Message", "")
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
            retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            if code in _DENIED_CODES:
                raise ApiError(
                    f"access denied: {iam_action(client.meta.service_model.signing_name or service, action)} was refused "
                    f"({code}); grant it to the caller",
                    code,
                    request_id,
                    retries,
                ) from None
            if code in _CREDENTIAL_CODES:
                raise ApiError(
                    f"AWS rejected the credentials calling {service}:{action} ({code}): refresh them or pick another --profile",
                    code,
                    request_id,
                    retries,
                ) from None
            raise ApiError(f"{service}:{action} failed: {code}: {message}".rstrip(": "), code, request_id, retries) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise AwsError(
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile"
            ) from None
        except EndpointConnectionError as exc:
            endpoint = client.meta.endpoint_url
            raise EndpointUnreachable(f"cannot reach the {service} endpoint {endpoint}: {type(exc).__name__}",
                                      retries=self._retries()) from None
        except BotoConnectionError as exc:
            # The connection broke after the request may have gone out: whether it landed is unknown.
            endpoint = client.meta.endpoint_url
            raise AwsError(f"lost the connection to the {service} endpoint {endpoint}: {type(exc).__name__}",
                           retries=self._retries()) from None
        except ResponseParserError as exc:
            # Not a BotoCoreError: an HTML error page from a proxy, or a truncated body. Something answered.
            endpoint = client.meta.endpoint_url
            raise AwsError(f"{service}:{action}: the endpoint {endpoint} answered with something that is not an AWS "
                           f"response ({_first_line(exc)})", retries=self._retries()) from None
        except BotoCoreError as exc:
            raise AwsError(f"{service}:{action} failed: {exc}", retries=self._retries()) from None

    def execute(self, call: ApiCall) -> dict[str, Any]:
        return self.call(call.service, call.operation, **dict(call.params))

    def paginate(self, service: str, operation: str, result_key: str, /, *, tokens: tuple[str, str] | None = None,
                 **params: Any) -> list[dict[str, Any]]:
        """Follow NextToken/Marker by hand: App Runner has no boto3 paginators. `tokens`: the request's
        and the answer's names for the page token where they differ (nextToken, or Marker and NextMarker)."""
        items: list[dict[str, Any]] = []
        token_in, token_out = tokens or (("Marker", "Marker") if service in ("rds", "elasticache") else ("NextToken", "NextToken"))
        while True:
            page = self.call(service, operation, **params)
            items.extend(page.get(result_key, []))
            token = page.get(token_out)
            if not token:
                return items
            params = {**params, token_in: token}
