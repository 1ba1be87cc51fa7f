"""Which values are secrets, how a Scrubber masks them, and what a CLI twin may carry."""

from __future__ import annotations

import json
import random
import string
import time
from urllib.parse import quote, quote_plus

import pytest

from runbook.model import ApiCall, Change, Phase
from runbook.secrets import (
    MASK,
    Scrubber,
    ScrubbingReporter,
    is_credential_shaped,
    is_secret_name,
    redact_url,
    sanitize,
    secrets_in_env,
)


def test_url_userinfo_and_query_are_masked_scheme_host_port_path_kept():
    url = "postgresql+psycopg2://nerava_admin:S3cr3t-pw@db.example.com:5432/nerava"
    assert redact_url(url) == "postgresql+psycopg2://***@db.example.com:5432/nerava"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
    # a password holding "/" and "@" unencoded (SQLAlchemy reads the userinfo to the last "@" before the path)
    assert redact_url("postgresql://u:pa/ss@w0rd@db.example.com/db") == "postgresql://***@db.example.com/db"
    assert redact_url("postgresql://db.example.com/db?sslmode=require&password=Qu3ry") == \
        "postgresql://db.example.com/db?sslmode=***&password=***"
    assert redact_url("https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/4504") == "https://***@o1.ingest.sentry.io/4504"
    # an "@" in the path is no userinfo: the host stays evidence
    assert redact_url("https://example.com/users/@bob") == "https://example.com/users/@bob"


def test_scrubber_masks_secrets_anywhere_in_nested_data():
    env = {"DATABASE_URL": "postgres://u:hunter22@h/db", "REDIS_AUTH_TOKEN": "tok-123456", "PORT": "8000"}
    found = secrets_in_env(env)
    assert found == {"hunter22", "tok-123456"}
    scrub = Scrubber(found)
    data = {"a": ["password is hunter22", {"t": "tok-123456"}], "port": 8000}
    assert scrub.data(data) == {"a": ["password is ***", {"t": "***"}], "port": 8000}


@pytest.mark.parametrize("name", ["SECRET_KEY_BASE", "ENCRYPTION_KEY", "PASSPHRASE", "DB_PASS_WORD", "JWT_SIGNING_KEY",
                                  "DB_PASSWORD", "GITHUB_TOKEN", "REDIS_AUTH", "dbPassword", "STRIPE_APIKEY",
                                  "CLIENT_SECRET_2", "SENTRY_DSN", "PRIVATE_KEY", "SESSION_COOKIE"])
def test_names_of_secrets(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["AUTH_PROVIDER", "TOKEN_URL", "AWS_ACCESS_KEY_ID", "PASSWORD_FILE", "KMS_KEY_ARN",
                                  "CACHE_KEY_PREFIX", "PORT", "DATABASE_URL", "BYPASS_CACHE", "SECRET_NAME"])
def test_names_that_say_where_a_secret_is_are_not_secrets(name):
    assert not is_secret_name(name)


def test_only_secret_like_names_are_masked():
    env = {"AUTH_PROVIDER": "aws", "TOKEN_URL": "https://id.example.com", "DB_PASSWORD": "pw-123456", "GITHUB_TOKEN": "ghp_abcdef"}
    assert secrets_in_env(env) == {"pw-123456", "ghp_abcdef"}


def test_values_shaped_like_credentials_count_whatever_their_name():
    blob = "ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaU"
    env = {
        "UPSTREAM_BLOB": blob,
        "ANALYTICS_URL": "https://a.example.com/i?user=bob&password=Qu3ry-Pa55w0rd",
        "ERRORS": "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/45",
        "REPLICA_URL": "postgresql://reader:rEad/Only@replica.example.com/db",
        "LIBPQ": "host=db.example.com password=Lib-pq-pw1 dbname=x",
        # not secrets: an image, a host, a region, a UUID, a flag
        "IMAGE": "public.ecr.aws/nerava/backend:latest", "HOST": "nerava-db.abc123.us-east-1.rds.amazonaws.com",
        "REGION": "us-east-1", "TRACE": "6f1c2b9e-8d4a-4c1e-9b7a-2f3e4d5c6b7a", "DEBUG": "true",
    }
    assert secrets_in_env(env) == {blob, "Qu3ry-Pa55w0rd", "0123456789abcdef0123456789abcdef", "rEad/Only", "Lib-pq-pw1"}
    assert is_credential_shaped("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert not is_credential_shaped("nerava-backend-production-2024")


def test_free_text_masks_raw_encoded_and_decoded_forms():
    password = "Db#Pa55:w0rd?x/y"
    encoded = quote(password, safe="")
    scrub = Scrubber(secrets_in_env({"DATABASE_URL": f"postgresql://admin:{encoded}@db.example.com/n"}))
    for spelled in (password, encoded, quote(password), quote_plus(password)):
        assert MASK in scrub.text(f"connecting with {spelled} now")
        assert spelled not in scrub.text(f"connecting with {spelled} now")
    # name=value pairs and URLs in free text, even with a secret never seen in the environment
    assert scrub.text('{"db_password": "Unseen-Pw-77"} and password=Unseen-Pw-88') == '{"db_password": "***"} and password=***'
    assert scrub.text("retrying postgres://x:Unseen-Pw-99@h:5432/db") == "retrying postgres://***@h:5432/db"


def test_environment_in_a_call_is_masked_but_the_followed_urls_evidence():
    env = {"DATABASE_URL": "postgresql://nerava_admin:S3cr3t@db.example.com:5432/nerava?sslmode=require",
           "FEATURE_FLAGS": "beta,new-ui", "PORT": "8000", "REDIS_URL": "redis://:t0ken@cache.example.com:6379/0"}
    scrub = Scrubber(secrets_in_env(env), shown_env={"DATABASE_URL", "REDIS_URL"})
    call = ApiCall("apprunner", "update_service", {"ServiceArn": "arn:x", "SourceConfiguration": {
        "ImageRepository": {"ImageConfiguration": {"RuntimeEnvironmentVariables": env, "Port": "8000"}}}})
    shown = scrub.call(call).params["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["RuntimeEnvironmentVariables"]
    assert shown == {"DATABASE_URL": "postgresql://***@db.example.com:5432/nerava?sslmode=***", "FEATURE_FLAGS": MASK,
                     "PORT": "8000", "REDIS_URL": "redis://***@cache.example.com:6379/0"}
    # the call itself keeps its values: it is what goes to AWS
    assert call.params["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["RuntimeEnvironmentVariables"] == env
    # masking twice masks the same: saved plans are compared by their masked calls
    once = scrub.data(call.as_dict())
    assert scrub.data(json.loads(json.dumps(once))) == once


def test_cli_twin_of_the_rebuild_reads_the_configuration_back_and_never_carries_a_mask():
    source = {"ImageRepository": {"ImageIdentifier": "public.ecr.aws/x/y:latest", "ImageRepositoryType": "ECR_PUBLIC",
                                  "ImageConfiguration": {"Port": "8000", "RuntimeEnvironmentVariables": {"DB_PASSWORD": "S3cr3t-pw"}}}}
    call = ApiCall("apprunner", "update_service", {"ServiceArn": "arn:aws:apprunner:us-east-1:1:service/x/1", "SourceConfiguration": source})
    for shown in (call, Scrubber({"S3cr3t-pw"}).call(call)):
        twin = shown.cli("us-east-1")
        assert "S3cr3t-pw" not in twin and MASK not in twin
        assert twin == ("aws apprunner update-service --service-arn arn:aws:apprunner:us-east-1:1:service/x/1 --source-configuration "
                        '"$(aws apprunner describe-service --service-arn arn:aws:apprunner:us-east-1:1:service/x/1 '
                        '--query Service.SourceConfiguration --output json --region us-east-1)" --region us-east-1')
    # any other masked value makes the line a comment that says why: pasted, it does nothing
    masked = Scrubber({"S3cr3t-pw"}).call(ApiCall("ssm", "put_parameter", {"Name": "x", "Value": "S3cr3t-pw"}))
    assert masked.cli().startswith("# not pasteable: Value holds secrets shown as ***")


def test_terminal_control_is_made_visible_everywhere():
    hostile = "boom\x1b]0;pwned\x07\x1b[2J\r\n    ok healthz: fine\x9b31m\u202eevil"
    shown = Scrubber().text(hostile)
    assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f or c == "\u202e" for c in shown)
    assert shown == "boom\\x1b]0;pwned\\x07\\x1b[2J\\r\\n    ok healthz: fine\\x9b31m\\u202eevil"
    assert sanitize("a\n\tb\x1b", multiline=True) == "a\n\tb\\x1b"
    assert Scrubber().data({"k\x1b": ["x\x1b"]}) == {"k\\x1b": ["x\\x1b"]}


def _hostile_texts(size: int):
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + ":/@?&=#%.-_ \"'"
    yield from (piece * (size // len(piece)) for piece in
                ("a", ":", "a:", "@", "://", "a://", "%41", "a=", "password=", "x://u:p@", "-", "a.b", "a://b@", "pw: x ", "A1b2"))
    yield "".join(rng.choice(alphabet) for _ in range(size))


def test_scrubber_runs_in_linear_time():
    """A 40,000-character string took 11 s (a quadratic regex); every shape now takes milliseconds."""
    scrub = Scrubber({"hunter22", "tok-123456", "Db#Pa55:w0rd"}, shown_env={"DATABASE_URL"})
    for text in _hostile_texts(40_000):
        started = time.perf_counter()
        scrub.text(text)
        secrets_in_env({"DB_PASSWORD": text, "BLOB": text, "DATABASE_URL": text})
        assert time.perf_counter() - started < 0.5, text[:20]


def test_scrubbing_reporter_scrubs_what_it_forwards_whatever_the_method():
    seen = []

    class Reporter:
        def proposing(self, step_id, change):
            seen.append(change)

        def note(self, message):
            seen.append(message)

        def summary(self, lines, *, footer):  # a method the engine may gain: forwarded and scrubbed too
            seen.append((lines, footer))

    scrub = Scrubber({"hunter22"})
    reporter = ScrubbingReporter(Reporter(), lambda: scrub)
    call = ApiCall("apprunner", "update_service", {"SourceConfiguration": {"RuntimeEnvironmentVariables": {"A": "hunter22"}}})
    reporter.proposing("s", Change(call, "rebuild with hunter22", Phase.REDEPLOY))
    reporter.note("failed: hunter22\x1b[2J")
    reporter.summary(("x hunter22",), footer="hunter22")
    assert seen[0].call.params == {"SourceConfiguration": {"RuntimeEnvironmentVariables": {"A": MASK}}}
    assert seen[0].description == "rebuild with ***" and seen[0].phase is Phase.REDEPLOY
    assert seen[1:] == ["failed: ***\\x1b[2J", (("x ***",), "***")]


def test_a_traceback_is_scrubbed_like_any_output():
    """--debug re-raises: the traceback goes through the same scrubber as the report."""
    import subprocess
    import sys

    code = ("from runbook.secrets import Scrubber, install_excepthook\n"
            "Scrubber({'hunter22-pw'}); install_excepthook()\n"
            "raise RuntimeError('login failed with hunter22-pw \\x1b[2J')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "RuntimeError: login failed with *** \\x1b[2J" in result.stderr
    assert "hunter22-pw" not in result.stderr and "\x1b" not in result.stderr


def test_a_known_secret_is_masked_whole_before_any_pattern_cuts_it():
    scrub = Scrubber(secrets_in_env({"PASSPHRASE": "correct horse battery staple"}))
    assert scrub.text("PASSPHRASE=correct horse battery staple, next") == "PASSPHRASE=***, next"
