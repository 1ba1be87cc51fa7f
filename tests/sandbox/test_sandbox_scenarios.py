"""Scenario files: validation errors are one clear line naming the file and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from runbook.errors import EXIT_USAGE, UsageError
from runbook_sandbox import bundled_scenarios, load_scenario
from runbook_sandbox.scenario import SCENARIO_DIR, scenario_from_data

MINIMAL = {
    "name": "mini",
    "vpcs": {"main": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.1.0/24"}}}},
    "services": [{"name": "mini-app"}],
}


def write(tmp_path: Path, data) -> str:
    path = tmp_path / "foo.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def error_of(tmp_path: Path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith(f"scenario {path}: "), message
    assert err.value.exit_code == EXIT_USAGE
    return message[len(f"scenario {path}: "):]


def mini(**changes):
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def with_service(**fields):
    return mini(services=[{"name": "mini-app", **fields}])


def test_minimal_scenario_gets_aws_defaults(tmp_path):
    scenario = load_scenario(write(tmp_path, MINIMAL))
    service = scenario.services[0]
    assert (service.status, service.port, service.health_check.protocol) == ("RUNNING", "8080", "TCP")
    assert [(op.type, op.status) for op in service.operations] == [("CREATE_SERVICE", "SUCCEEDED")]
    assert scenario.region == "us-east-1" and scenario.vpcs[0].subnets[0].az == "us-east-1a"
    assert scenario.security_group("default").is_default  # always there, even undeclared


def test_bundled_names_and_paths_both_load():
    for name in bundled_scenarios():
        assert load_scenario(name).name == name
        assert load_scenario(str(SCENARIO_DIR / f"{name}.yaml")).name == name


@pytest.mark.parametrize("data,expected", [
    ("name: [unclosed", "not valid YAML: "),
    ("- just\n- a list\n", "expected a mapping, got list"),
    ("", "the file is empty"),
    ("name: x\nname: y\nvpcs: {}\n", "not valid YAML: duplicate key 'name' (line 2, column 1)"),
    ({"name": "x"}, "vpcs: required"),
    (mini(vpcs={}), "vpcs: needs at least one VPC"),
    (mini(colour="blue"), "colour: unknown key (expected one of: name, description, region, vpcs, "),
    (mini(region="mars-1"), "region: 'mars-1' is not an AWS region name like us-east-1"),
    (with_service(port=[8000]), "services[0].port: expected a string or integer, got list"),
    (with_service(port="eighty"), "services[0].port: must be a port number 1-65535, got 'eighty'"),
    (with_service(helth_check={}), "services[0].helth_check: unknown key (expected one of: "),
    (with_service(health_check={"protocol": "HTTPS"}), "services[0].health_check.protocol: must be TCP or HTTP"),
    (with_service(health_check={"interval": 30}), "services[0].health_check.interval: must be between 1 and 20, got 30"),
    (with_service(connector="ghost"), "services[0].connector: no connector 'ghost' (defined: none)"),
    (with_service(env={"DATABASE_URL": "postgres://${database.nope.address}/x"}),
     "services[0].env.DATABASE_URL: ${database.nope.address} names no database 'nope' (defined: none)"),
    (with_service(env={"X": "${vault.secret}"}), "services[0].env.X: unknown placeholder ${vault.secret}"),
    (with_service(env={"DEBUG": True}), "services[0].env.DEBUG: expected a string, got boolean (quote it)"),
    (with_service(operations=[{"type": "CREATE_SERVICE", "status": "IN_PROGRESS"},
                              {"type": "START_DEPLOYMENT", "status": "SUCCEEDED"}]),
     "services[0].operations[0].status: IN_PROGRESS: only the newest (last) operation can still be in flight"),
    (with_service(status="RUNNING", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}]),
     "services[0].status: RUNNING contradicts the operations, which leave the service CREATE_FAILED"),
    (with_service(status="RUNNING", operations=[{"type": "CREATE_SERVICE", "status": "IN_PROGRESS"}]),
     "services[0].status: must be OPERATION_IN_PROGRESS while operation CREATE_SERVICE is IN_PROGRESS"),
    (with_service(operations=[{"type": "DEPLOY", "status": "SUCCEEDED"}]),
     "services[0].operations[0].type: must be one of CREATE_SERVICE, "),
    (with_service(name="ab"), "services[0].name: 'ab' is not a valid App Runner service name (4-40 characters)"),
    (mini(services=[{"name": "mini-app"}, {"name": "mini-app"}]), "services[1].name: service 'mini-app' is defined twice"),
    (mini(vpcs={"main": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.1.0.0/24"}}}}),
     "vpcs.main.subnets.a.cidr: 10.1.0.0/24 is not inside the VPC block 10.0.0.0/16"),
    (mini(vpcs={"main": {"cidr": "10.0.0.0/33", "subnets": {}}}), "vpcs.main.cidr: not a valid CIDR block: "),
    (mini(vpcs={"main": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.1.0/24", "route_table": "rt"}}}}),
     "vpcs.main.subnets.a.route_table: no route table 'rt' in vpc 'main'"),
    (mini(vpcs={"main": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.1.0/24"}},
                         "route_tables": {"rt": {"routes": [{"destination": "0.0.0.0/0", "nat_gateway": "nat"}]}}}}),
     "vpcs.main.route_tables.rt.routes[0].nat_gateway: no NAT gateway 'nat' in vpc 'main'"),
    (mini(security_groups={"db-sg": {"ingress": [{"protocol": "tcp", "port": 5432, "source_group": "ghost"}]}}),
     "security_groups.db-sg.ingress[0].source_group: no security group 'ghost' (defined: db-sg, default)"),
    (mini(security_groups={"db-sg": {"ingress": [{"protocol": "tcp", "port": 5432}]}}),
     "security_groups.db-sg.ingress[0]: needs exactly one of cidr, cidr_ipv6, source_group, prefix_list, peer_group, foreign_group, foreign_prefix_list (one source type per rule)"),
    (mini(security_groups={"db-sg": {"ingress": [{"protocol": "tcp", "cidr": "0.0.0.0/0"}]}}),
     "security_groups.db-sg.ingress[0]: tcp and udp need port, or from_port and to_port"),
    (mini(security_groups={"db-sg": {"ingress": [{"protocol": "tcp", "from_port": 10, "to_port": 5,
                                                   "cidr": "0.0.0.0/0"}]}}),
     "security_groups.db-sg.ingress[0].to_port: to_port 5 is below from_port 10"),
    (mini(security_groups={"db-sg": {"ingress": [{"protocol": "gre", "cidr": "0.0.0.0/0"}]}}),
     "security_groups.db-sg.ingress[0].protocol: expected tcp, udp, icmp or -1, got 'gre'"),
    (mini(security_groups={"db-sg": {"ingress": "all"}}), "security_groups.db-sg.ingress: expected a list, got string"),
    (mini(databases=[{"id": "db1", "subnets": ["a", "nope"], "security_groups": ["default"]}]),
     "databases[0].subnets[1]: no subnet 'nope' (defined: a)"),
    (mini(databases=[{"id": "db1", "subnets": ["a"], "security_groups": ["ghost"]}]),
     "databases[0].security_groups[0]: no security group 'ghost' (defined: default)"),
    (mini(databases=[{"id": "db1", "subnets": ["a"]}]), "databases[0].security_groups: required"),
    (mini(databases=[{"id": "db1", "engine": "oracle", "subnets": ["a"], "security_groups": ["default"]}]),
     "databases[0].engine: must be one of postgres, mysql, mariadb, aurora-postgresql, aurora-mysql, got 'oracle'"),
    (mini(caches=[{"id": "c1", "subnets": ["a"], "security_groups": ["default"], "auth_token": "0123456789abcdef"}]),
     "caches[0].auth_token: an AUTH token needs transit_encryption: true"),
    (mini(connectors=[{"name": "abc", "subnets": [], "security_groups": ["default"]}]),
     "connectors[0].name: 'abc' is not a valid VPC connector name (4-40 characters)"),
    (mini(connectors=[{"name": "my-conn", "subnets": [], "security_groups": ["default"]}]),
     "connectors[0].subnets: needs at least 1 entry"),
])
def test_malformed_files_fail_with_one_line(tmp_path, data, expected):
    message = error_of(tmp_path, data)
    assert message.startswith(expected), message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UsageError, match=r"^scenario nope\.yaml: no such file or bundled scenario \(bundled: "):
        load_scenario("nope.yaml")
    with pytest.raises(UsageError, match=r": not a file$"):
        load_scenario(str(tmp_path))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match=r"^scenario .*bin\.yaml: cannot read: "):
        load_scenario(str(binary))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _replace(data, path, value):
    data = copy.deepcopy(data)
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _delete(data, path):
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


@pytest.mark.parametrize("name", bundled_scenarios())
def test_no_malformed_variant_of_a_bundled_file_escapes_as_a_traceback(name):
    """Replace or delete every node of every bundled scenario: the loader either
    accepts the result or raises UsageError with one line; nothing else."""
    bad_values = [None, [], {}, "x", 7, -1, True, 1.5, [1], {"a": 1}, "${database.x.address}"]
    for name in (name,):
        original = yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text())
        tried = 0
        for path in list(_paths(original)):
            variants = [_replace(original, path, v) for v in bad_values]
            if path:
                variants.append(_delete(original, path))
            for variant in variants:
                tried += 1
                try:
                    scenario_from_data(variant, label=f"{name}.yaml")
                except UsageError as err:
                    assert "\n" not in str(err) and str(err).startswith(f"scenario {name}.yaml: "), str(err)
        assert tried > 500


def test_placeholders_resolve_to_the_endpoints_moto_returns(load):
    sb = load("healthy")
    env = sb.service_state("nerava-backend")["env"]
    db = sb.client("rds").describe_db_instances()["DBInstances"][0]["Endpoint"]
    assert f"@{db['Address']}:{db['Port']}/" in env["DATABASE_URL"]
    assert "${" not in "".join(env.values())


def test_a_scenario_aws_refuses_is_a_usage_error_at_load(load, yaml_scenario):
    scenario = yaml_scenario("vpcs: {main: {cidr: 10.0.0.0/16, subnets: {a: {cidr: 10.0.1.0/24, az: us-east-1z}}}}")
    with pytest.raises(UsageError) as err:
        load(scenario)
    message = str(err.value)
    assert message.startswith("scenario inline.yaml: cannot be built: An error occurred (InvalidParameterValue) "
                              "when calling the CreateSubnet operation")
    assert "\n" not in message and len(message) < 400
    assert load("healthy").app_health("nerava-backend")[0]  # the sandbox is still usable


SECRET = {"name": "app/db", "value": "postgres://u:p@h:5432/d"}
CONNECTOR = {"name": "my-conn", "subnets": ["a"], "security_groups": ["default"]}


@pytest.mark.parametrize("data,expected", [
    (mini(connectors=[{**CONNECTOR, "status": "DELETED"}]), "connectors[0].status: must be one of ACTIVE, INACTIVE, got 'DELETED'"),
    (with_service(egress="VPC"), "services[0].egress: VPC egress needs a connector"),
    (mini(connectors=[CONNECTOR], services=[{"name": "mini-app", "connector": "my-conn", "egress": "NAT"}]),
     "services[0].egress: must be one of DEFAULT, VPC, got 'NAT'"),
    (with_service(status="DELETE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"},
                                                      {"type": "DELETE_SERVICE", "status": "SUCCEEDED"}]),
     "services[0].operations[1].status: a deleted service is gone (ListServices omits it): leave the service out"),
    (with_service(operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"}, {"type": "DELETE_SERVICE", "status": "FAILED"},
                              {"type": "START_DEPLOYMENT", "status": "SUCCEEDED"}]),
     "services[0].operations[2].type: after a deletion only DELETE_SERVICE again (UpdateService is refused)"),
    (with_service(status="RUNNING", operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"},
                                                {"type": "DELETE_SERVICE", "status": "FAILED"}]),
     "services[0].status: RUNNING contradicts the operations, which leave the service DELETE_FAILED"),
    (mini(secrets=[SECRET, SECRET]), "secrets[1].name: secret 'app/db' is defined twice"),
    (mini(secrets=[{**SECRET, "store": "vault"}]), "secrets[0].store: must be one of secretsmanager, ssm, got 'vault'"),
    (mini(secrets=[{**SECRET, "value": "${database.nope.address}"}]),
     "secrets[0].value: ${database.nope.address} names no database 'nope' (defined: none)"),
    (with_service(secrets={"DATABASE_URL": "ghost"}), "services[0].secrets.DATABASE_URL.secret: no secret 'ghost' (defined: none)"),
    (mini(secrets=[SECRET], services=[{"name": "mini-app", "secrets": {"DATABASE_URL": {"secret": "app/db", "by": "name"}}}]),
     "services[0].secrets.DATABASE_URL.by: App Runner takes a Secrets Manager secret by full ARN only"),
    (mini(secrets=[{**SECRET, "store": "ssm", "name": "/app/db"}],
          services=[{"name": "mini-app", "secrets": {"DATABASE_URL": {"secret": "/app/db", "json_key": "url"}}}]),
     "services[0].secrets.DATABASE_URL.json_key: only a Secrets Manager secret has JSON keys"),
    (mini(secrets=[SECRET], services=[{"name": "mini-app", "env": {"DATABASE_URL": "x"}, "secrets": {"DATABASE_URL": "app/db"}}]),
     "services[0].secrets.DATABASE_URL: also set in env: a variable comes from one place"),
    (with_service(image="public.ecr.aws/x/y:1", code_repository={"url": "https://github.com/x/y"}),
     "services[0].code_repository: a service runs an image or a code repository, not both"),
    (with_service(code_repository={"url": "git@github.com:x/y"}),
     "services[0].code_repository.url: 'git@github.com:x/y' is not an https:// repository URL"),
    (with_service(code_repository={"url": "https://github.com/x/y", "runtime": "COBOL"}),
     "services[0].code_repository.runtime: must be one of PYTHON_3, "),
])
def test_malformed_app_runner_worlds_fail_with_one_line(tmp_path, data, expected):
    message = error_of(tmp_path, data)
    assert message.startswith(expected), message


def test_app_runner_world_fields_parse(tmp_path):
    scenario = load_scenario(write(tmp_path, mini(
        secrets=[SECRET, {"name": "/app/redis", "store": "ssm", "value": "redis://h:6379"}],
        connectors=[{**CONNECTOR, "status": "INACTIVE"}],
        services=[{"name": "mini-app", "connector": "my-conn", "egress": "DEFAULT", "status": "DELETE_FAILED",
                   "secrets": {"DATABASE_URL": {"secret": "app/db", "json_key": "url"},
                               "REDIS_URL": {"secret": "/app/redis", "by": "name"},
                               "OTHER": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"},
                   "code_repository": {"url": "https://github.com/x/y", "configuration_source": "REPOSITORY"}}])))
    service = scenario.services[0]
    assert (service.egress, service.connector, service.status) == ("DEFAULT", "my-conn", "DELETE_FAILED")
    assert [(op.type, op.status) for op in service.operations] == [("CREATE_SERVICE", "SUCCEEDED"), ("DELETE_SERVICE", "FAILED")]
    refs = dict(service.secrets)
    assert refs["DATABASE_URL"].json_key == "url" and refs["REDIS_URL"].by_name
    assert refs["OTHER"].literal.endswith(":secret:x-AbCdEf")
    assert service.code.configuration_source == "REPOSITORY" and service.image == "https://github.com/x/y"
    assert scenario.connectors[0].status == "INACTIVE"
    assert [s.store for s in scenario.secrets] == ["secretsmanager", "ssm"]


def test_a_secret_moto_refuses_is_a_usage_error_at_load(load, yaml_scenario):
    scenario = yaml_scenario("""
vpcs: {main: {cidr: 10.0.0.0/16, subnets: {a: {cidr: 10.0.1.0/24}}}}
secrets:
  - {name: /aws/reserved, store: ssm, value: x}
""")
    with pytest.raises(UsageError, match=r"^scenario inline.yaml: secrets: /aws/reserved: cannot be built: "):
        load(scenario)
