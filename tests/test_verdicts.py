"""The rules of issue 10, each judged failing and passing on worlds built in the sandbox and read over HTTP.

The passing halves are also in worlds.PASSING, where `fix --yes` must change nothing.
"""

from __future__ import annotations

import pytest

from tests.helpers import mutating_calls, run, step
from tests.worlds import (
    PASSING,
    app_serves,
    default_egress,
    health_check_on,
    nat_gateway,
    nat_in_a_subnet_without_internet,
    public_rule,
    redis_scheme,
    write_world,
)


def check_world(world, tmp_path, name, *mutations):
    box = world(write_world(tmp_path, name, *mutations))
    report, _, aws = run(fix=False)
    assert not mutating_calls(aws)
    return box, report


# -- a working health check is right, whatever the runbook's default path ------------
def test_a_health_check_on_the_apps_own_path_is_ok_and_is_what_healthz_probes(world, tmp_path):
    box, report = check_world(world, tmp_path, "own-path", *PASSING["health-check-on-the-apps-own-path"])
    config = step(report, "health-check-config").finding
    assert config.status.value == "ok" and not config.changes, config
    assert "/health: the app answers 200" in config.summary
    healthz = step(report, "healthz").finding
    assert healthz.status.value == "ok" and healthz.summary == "/health answered 200 from the application"
    assert healthz.evidence[0].source.endswith("/health")


def test_a_health_check_path_the_app_does_not_serve_is_moved_only_to_a_path_that_answers(world, tmp_path):
    """The app answers 404 on "/", 200 on the runbook's /healthz: that path is proposed. When it
    serves its health on a path nobody can guess, the check fails and proposes nothing."""
    _, report = check_world(world, tmp_path, "wrong-path", lambda d: d["services"][0].update(health_check={"protocol": "HTTP", "path": "/"}))
    finding = step(report, "health-check-config").finding
    assert finding.status.value == "fail"
    (change,) = [c for c in finding.changes if not c.recommendation]
    assert change.call.params["HealthCheckConfiguration"]["Path"] == "/healthz"
    observations = [e.observation for e in finding.evidence]
    assert any(o.startswith("HTTP 404") for o in observations) and any(o.startswith("HTTP 200") for o in observations)

    box, report = check_world(world, tmp_path, "unguessable", health_check_on("/"), app_serves("/internal/status"))
    finding = step(report, "health-check-config").finding
    assert finding.status.value == "fail" and not finding.changes, finding
    fixed, _, aws = run(timeout=30)
    assert "apprunner:UpdateService" not in mutating_calls(aws) and fixed.exit_code == 1


# -- TLS must match both ways ---------------------------------------------------------
@pytest.mark.parametrize("scheme, transit", [("rediss", False), ("redis", True)])
def test_a_redis_url_whose_tls_does_not_match_the_cache_fails_with_both_values(world, tmp_path, scheme, transit):
    box, report = check_world(world, tmp_path, f"{scheme}-{transit}", redis_scheme(scheme, transit))
    finding = step(report, "env-endpoints").finding
    assert finding.status.value == "fail", finding
    assert f"uses {scheme}://" in finding.summary and f"TransitEncryptionEnabled={transit}" in finding.summary
    assert any(f"scheme {scheme}://" in e.observation and f"TransitEncryptionEnabled={transit}" in e.observation
               for e in finding.evidence)
    assert not box.app_health("nerava-backend")[0]  # the sandbox's own judgement agrees: the app cannot connect


def test_a_redis_url_whose_tls_matches_the_cache_passes(world, tmp_path):
    box, report = check_world(world, tmp_path, "rediss-tls", *PASSING["rediss-to-a-cache-with-tls"])
    assert step(report, "env-endpoints").finding.status.value == "ok"
    assert box.app_health("nerava-backend")[0]


# -- a NAT route must lead somewhere --------------------------------------------------
@pytest.mark.parametrize("name, mutate, why", [
    ("private-nat", nat_gateway(connectivity="private"), "private NAT gateway"),
    ("deleted-nat", nat_gateway(state="deleted"), "blackhole"),
    ("nat-without-internet", nat_in_a_subnet_without_internet, "does not route 0.0.0.0/0 to an internet gateway"),
])
def test_a_nat_route_that_leads_nowhere_warns_with_the_nats_subnet_and_route(world, tmp_path, name, mutate, why):
    box, report = check_world(world, tmp_path, name, mutate)
    finding = step(report, "nat-egress").finding
    assert finding.status.value == "warn" and not finding.changes, finding
    evidence = " | ".join(e.observation for e in finding.evidence)
    assert why in finding.summary + evidence, (finding.summary, evidence)
    assert box.ids["nat:nat-a"] in evidence and "ConnectivityType=" in evidence and "State=" in evidence
    nat_home = box.ids["subnet:nat-home" if name == "nat-without-internet" else "subnet:public-a"]
    assert f"{nat_home} uses " in evidence
    assert report.exit_code == 0  # a warning: nothing shows the app calls the internet


def test_a_nat_route_to_an_available_public_nat_with_an_internet_route_passes(world, tmp_path):
    box, report = check_world(world, tmp_path, "nat-ok")
    finding = step(report, "nat-egress").finding
    assert finding.status.value == "ok", finding
    assert any(box.ids["nat:nat-a"] in e.observation and box.ids["igw:main-igw"] in e.observation for e in finding.evidence)


# -- no connector does not mean nothing to report -------------------------------------
def test_a_public_database_without_a_connector_is_reported_never_revoked(world, tmp_path):
    box, report = check_world(world, tmp_path, "default-public", default_egress, public_rule("db-sg"))
    finding = step(report, "rds-public-ingress").finding
    assert finding.status.value == "warn" and not finding.changes, finding
    assert any("0.0.0.0/0" in e.observation and "sgr-" in e.observation for e in finding.evidence)
    fixed, _, aws = run(timeout=30)
    assert not mutating_calls(aws), mutating_calls(aws)
    assert step(fixed, "rds-public-ingress").finding.status.value == "warn"


def test_a_database_without_a_connector_and_without_public_rules_passes(world, tmp_path):
    _, report = check_world(world, tmp_path, "default-private", default_egress,
                            lambda d: d["databases"][0].update(publicly_accessible=False))
    assert step(report, "rds-public-ingress").finding.status.value == "ok"


# -- a password with an unencoded '/' -------------------------------------------------
@pytest.mark.parametrize("password, verdict", [("pa/ss", "fail"), ("pa%2Fss", "ok")])
def test_a_url_whose_password_holds_an_unencoded_slash_cannot_be_parsed(world, tmp_path, password, verdict):
    """urllib (and libpq) end the authority at the '/', so the app reads part of the password as its
    host: the check says so instead of reporting a host named after the password."""
    from tests.worlds import service

    def password_is(doc):
        env = service(doc)["env"]
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("S3cr3t-pw", password)

    box, report = check_world(world, tmp_path, f"slash-{verdict}", password_is)
    finding = step(report, "env-endpoints").finding
    assert finding.status.value == verdict, finding
    if verdict == "fail":
        assert "percent-encoded" in finding.summary and "(no host)" not in finding.summary
        assert "pa/ss" not in repr(finding) and "ss@" not in finding.summary
