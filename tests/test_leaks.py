"""Every kind of secret planted in one world, then every output grepped for every spelling of each.

The red team's list (issue 11): names the old pattern missed (SECRET_KEY_BASE, ENCRYPTION_KEY,
PASSPHRASE, DB_PASS_WORD, JWT_SIGNING_KEY), a URL password holding "/", an encoded URL password
whose decoded form turns up in a log line, a `?password=` query, a DSN key, a high-entropy value;
the same secrets echoed in log lines and in the health probe's body, with terminal escape
sequences beside them. Outputs: text, JSON and Markdown reports (on stdout and in an --output
file), the plan, the journal, `history`, and `--debug` stderr of check, fix --dry-run and apply.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import yaml

RUNBOOK = [sys.executable, "-m", "runbook"]

DB_PASSWORD = "Db#Pa55:w0rd?x"  # the master password: RDS allows # : ?, a URL must encode them
SECRETS = {
    "SECRET_KEY_BASE": "skb-4f9a1c7e2b8d6053",
    "ENCRYPTION_KEY": "enc-k3y-71b2c9d4e5",
    "PASSPHRASE": "correct horse battery staple",
    "DB_PASS_WORD": "dbpw-0a9b8c7d",
    "JWT_SIGNING_KEY": "jwt-s1gn-5e6f7a8b9c",
}
REPLICA_PASSWORD = "rEad/0nly-pw"  # "/" unencoded
QUERY_PASSWORD = "Qu3ry-Pa55w0rd"
DSN_KEY = "5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f"
BLOB = "Zk3Qm9Xp2Lr7Vt5Nw8Yc4Hb6Jd1Fg0SaEuIoPq"  # named like nothing: secret by its shape
PLANTED = [DB_PASSWORD, REPLICA_PASSWORD, QUERY_PASSWORD, DSN_KEY, BLOB, *SECRETS.values()]
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\r     ok healthz: faked\x9b2J"


def spellings(secret: str) -> set[str]:
    """Its spellings, and each half of it: a secret masked only in part has leaked too."""
    whole = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), unquote(secret)}
    return whole | {secret[: len(secret) // 2 + 1], secret[len(secret) // 2:]}


def leak_scenario(tmp_path: Path) -> str:
    from runbook_sandbox.scenario import SCENARIO_DIR

    doc = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["name"] = "leaks"
    doc["databases"][0]["master_password"] = DB_PASSWORD
    service = doc["services"][0]
    service["env"] = {
        "DATABASE_URL": f"postgresql+psycopg2://nerava_admin:{quote(DB_PASSWORD, safe='')}"
                        "@${database.nerava-db.address}:${database.nerava-db.port}/nerava",
        "REDIS_URL": "redis://${cache.nerava-redis.address}:${cache.nerava-redis.port}/0",
        **SECRETS,
        "REPLICA_URL": f"postgresql://reader:{REPLICA_PASSWORD}@replica.internal.example.com:5432/nerava",
        "ANALYTICS_URL": f"https://analytics.example.com/ingest?user=bob&password={QUERY_PASSWORD}",
        "ERROR_REPORTING": f"https://{DSN_KEY}@o450123.ingest.sentry.io/4504123",
        "UPSTREAM_BLOB": BLOB,
        "PORT": "8000",
    }
    # CREATE_FAILED: the fix is the rebuild, an update_service that resends this whole environment.
    service.update(status="CREATE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}])
    echoed = " ".join(f"{k}={v}" for k, v in SECRETS.items())
    service["logs"] = {
        "service": [f"[AppRunner] Deployment failed. Failure reason: Health check failed. {ESCAPES}"],
        "application": [
            f'sqlalchemy.exc.OperationalError: password authentication failed for user "nerava_admin" (password {DB_PASSWORD})',
            f"Container exit code 1: connecting to postgresql://nerava_admin:{DB_PASSWORD}@${{database.nerava-db.address}}:5432/nerava",
            f"Container exit code 1 with {echoed}",
            f"Container exit code 1: replica {REPLICA_PASSWORD}, analytics {quote_plus(QUERY_PASSWORD)}, dsn {DSN_KEY}, blob {BLOB} {ESCAPES}",
        ],
    }
    path = tmp_path / "leaks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def probe_body() -> str:
    return json.dumps({"status": "degraded", "config": {**SECRETS, "db": f"postgresql://nerava_admin:{DB_PASSWORD}@db/nerava",
                                                         "blob": BLOB, "dsn": DSN_KEY}, "banner": ESCAPES})


def cli(*args, env):
    return subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, env=env, timeout=180)


def test_no_planted_secret_reaches_any_output(world, tmp_path):
    box = world(leak_scenario(tmp_path))
    env = {**os.environ, **box.env, "XDG_STATE_HOME": str(tmp_path / "state")}
    configured = dict(box.service_state("nerava-backend")["env"])
    journal, plan = tmp_path / "journal.jsonl", tmp_path / "plan.json"
    outputs: dict[str, str] = {}

    def keep(name, result, out=None):
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = result.stdout, result.stderr
        if out is not None:
            outputs[f"{name} {out.name}"] = out.read_text()

    # Before the fix: CREATE_FAILED, the planted log lines read, the rebuild proposed.
    report = tmp_path / "check.json"
    keep("check json", cli("check", "apprunner-vpc", "-s", "nerava-backend", "-f", "json", "-o", str(report), env=env), report)
    keep("check markdown", cli("--debug", "check", "apprunner-vpc", "-s", "nerava-backend", "-f", "markdown", env=env))
    proposed = json.loads(report.read_text())
    logs = next(s for s in proposed["steps"] if s["id"] == "startup-logs")
    assert len(logs["evidence"]) >= 4, logs  # the planted lines are there, scrubbed
    rebuild = [c for s in proposed["steps"] for c in s["changes"] if c["operation"] == "update_service"]
    assert rebuild and '"$(aws apprunner describe-service' in rebuild[0]["cli"]

    # The plan, then apply it: the call that goes out carries the real environment.
    keep("plan", cli("--debug", "fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run", "--plan-out", str(plan),
                     "-f", "text", env=env))
    assert "Container exit code" in outputs["plan stdout"]  # the text report shows the log evidence
    outputs["plan file"] = plan.read_text()
    box.faults.answer("nerava-backend", 200, probe_body())
    applied = cli("--debug", "apply", str(plan), "--yes", "-f", "json", "--journal", str(journal), "--timeout", "60", env=env)
    keep("apply", applied)
    assert applied.returncode == 0, applied.stderr
    assert box.service_state("nerava-backend")["env"] == configured  # the rebuild resent the real values
    healthz = next(s for s in json.loads(applied.stdout)["steps"] if s["id"] == "healthz")
    assert "degraded" in healthz["evidence"][0]["data"]["body"]  # the probe's body was read, scrubbed

    # Serving now, answering 500 with the secrets in its body: the text report shows that body.
    box.faults.answer("nerava-backend", 500, probe_body())
    keep("serving text", cli("--debug", "check", "apprunner-vpc", "-s", "nerava-backend", "-f", "text", env=env))
    assert "degraded" in outputs["serving text stdout"]
    outputs["journal"] = journal.read_text()
    keep("history", cli("history", "--journal", str(journal), env=env))

    leaks = [(name, secret) for name, text in outputs.items() for secret in PLANTED for form in spellings(secret) if form in text]
    assert not leaks, leaks
    escapes = [name for name, text in outputs.items() if any(c in text for c in "\x1b\x07\x9b\r")]
    assert not escapes, escapes
    everything = "\n".join(outputs.values())
    # What is evidence is still shown: the database's host, and the masks where secrets were.
    assert "postgresql+psycopg2://***@nerava-db." in everything and "\\x1b]0;pwned" in everything
