"""Express Mode's managed resources, made for real in the sandbox's moto.

:class:`MotoExpress` is the ECS emulator's :class:`~runbook_sandbox.emulators.ecs_express.ExpressProvisioner`
in the sandbox. For each ``CreateExpressGatewayService`` it creates, through the sandbox's
internal boto3 clients (no faults, no watch), what AWS's developer guide lists
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/express-service-work.html):

* a load balancer security group admitting 443 and 80 from ``0.0.0.0/0``;
* a service security group tagged ``AmazonECSManaged=true`` admitting the load balancer's
  group on the container port only ("minimal required ingress"); ECS adds it to the service's
  ``awsvpcConfiguration.securityGroups`` beside the customer's own groups;
* an Application Load Balancer in the service's subnets: ``internet-facing`` (ingress path
  ``PUBLIC``) when every subnet routes ``0.0.0.0/0`` to an internet gateway, else
  ``internal`` (``PRIVATE``);
* a target group (``ip``, HTTP, port = ``containerPort``, health check on ``healthCheckPath``
  at the traffic port, matcher 200);
* an ACM certificate for the endpoint ``<service>.ecs.<region>.on.aws``, an HTTPS:443
  listener whose default action is a fixed ``404`` (unverified: AWS does not document what
  its shared ALB answers a Host no rule names) and a host-header rule for the endpoint that
  forwards to the target group;
* the log group (the configuration's ``awsLogsConfiguration.logGroup``, else
  ``/aws/ecs/<cluster>/<service>``).

The load balancer gets a loopback front (:mod:`runbook_sandbox.alb`), and ELBv2's ``DNSName`` for
it is that front's ``127.0.0.1:PORT`` (the ``elbv2-loopback-dns-name`` shim). **The probe contract**
(what a tool does to reach an Express service's app, in the sandbox as against AWS):

1. read the endpoint from ``DescribeExpressGatewayService`` →
   ``activeConfigurations[0].ingressPaths[0].endpoint`` (``<service>.ecs.<region>.on.aws``), and
   the load balancer from ``DescribeServiceRevisions`` → ``ecsManagedResources.ingressPaths[0].
   loadBalancer.arn``;
2. ``DescribeLoadBalancers`` → ``DNSName`` (in the sandbox ``127.0.0.1:PORT``);
3. connect to the DNS name and send the request with ``Host: <endpoint>``. In the sandbox the front
   speaks plain HTTP (``http://<DNSName>/healthz``), standing for the HTTPS:443 listener (no TLS
   on loopback); against AWS, ``https://<endpoint>/healthz`` is the same request.

What answers: a Host equal to the endpoint (case-insensitive, any ``:port`` dropped) goes to the
host-header rule's target group: the app's own answer (``Server: uvicorn``: 200 on its health path,
404 elsewhere) behind a healthy target, else ``503`` ``Server: awselb/2.0`` (no healthy target).
Any other Host (the raw DNS name included) gets the listener's default: ``404`` ``Server:
awselb/2.0``, body ``Not Found``. An internal load balancer (private subnets) cannot be probed: its
DNS name refuses connections; read target health instead.

One load balancer per service (AWS shares one among up to 25; nothing here depends on it).
Every resource but the log group carries ``AmazonECSManaged=true`` and
``ecs:express-service=<cluster>/<service>`` tags.

:meth:`MotoExpress.reconfigure` follows a changed health path with ``modify_target_group``; a
changed container port cannot be modified on a target group, so it gets a new one (the rule
forwards there, the old one is deleted) and the service group's ingress moves to the new port;
changed subnets move the load balancer (``set_subnets``; its scheme stays, unverified).
:meth:`MotoExpress.deprovision` deletes all but the log group (its lines outlive the service).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError

from runbook_sandbox.emulators.ecs_express import ExpressResources
from runbook_sandbox.emulators.ecs_params import invalid

if TYPE_CHECKING:  # pragma: no cover
    from runbook_sandbox.alb import AlbFronts

MANAGED_TAG = {"Key": "AmazonECSManaged", "Value": "true"}


def endpoint_of(service_name: str, region: str) -> str:
    return f"{service_name}.ecs.{region}.on.aws"


class MotoExpress:
    """``clients_for(region)``: the sandbox's internal :class:`~runbook_sandbox.moto_server.Clients`;
    ``fronts``: where each load balancer gets its loopback front (none: no front)."""

    def __init__(self, clients_for: Callable[[str], Any], fronts: "AlbFronts | None" = None) -> None:
        self.clients_for = clients_for
        self.fronts = fronts

    # ------------------------------------------------------------------ the provisioner

    def provision(self, region: str, cluster: str, service_name: str, configuration: dict) -> ExpressResources:
        try:
            return self._provision(region, cluster, service_name, configuration)
        except ClientError as err:  # a subnet or group that does not exist, say
            raise invalid(f"Express Mode could not create its resources: {err}") from None

    def reconfigure(self, region: str, resources: ExpressResources, configuration: dict) -> None:
        clients = self.clients_for(region)
        elb, ec2 = clients.client("elbv2"), clients.client("ec2")
        port = configuration["primaryContainer"]["containerPort"]
        subnets = configuration["networkConfiguration"]["subnets"]
        try:
            (lb,) = elb.describe_load_balancers(LoadBalancerArns=[resources.load_balancer_arn])["LoadBalancers"]
            if sorted(z["SubnetId"] for z in lb.get("AvailabilityZones", [])) != sorted(subnets):
                elb.set_subnets(LoadBalancerArn=resources.load_balancer_arn, Subnets=subnets)
            tg = elb.describe_target_groups(TargetGroupArns=[resources.target_group_arn])["TargetGroups"][0]
            if tg["Port"] != port:
                old_port, old_arn = tg["Port"], tg["TargetGroupArn"]
                resources.target_group_arn = self._target_group(elb, tg["VpcId"], port, configuration,
                                                                resources.tags)
                elb.modify_rule(RuleArn=resources.rule_arn, Actions=[
                    {"Type": "forward", "TargetGroupArn": resources.target_group_arn}])
                elb.delete_target_group(TargetGroupArn=old_arn)
                for sg in resources.service_security_groups:
                    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
                        _from_group(old_port, resources.load_balancer_security_groups[0])])
                    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
                        _from_group(port, resources.load_balancer_security_groups[0])])
            elif tg.get("HealthCheckPath") != configuration["healthCheckPath"]:
                elb.modify_target_group(TargetGroupArn=resources.target_group_arn,
                                        HealthCheckPath=configuration["healthCheckPath"])
        except ClientError as err:
            raise invalid(f"Express Mode could not update its resources: {err}") from None
        resources.updated_at = time.time()

    def deprovision(self, region: str, resources: ExpressResources) -> None:
        clients = self.clients_for(region)
        elb, ec2 = clients.client("elbv2"), clients.client("ec2")
        steps: list[Callable[[], Any]] = [
            lambda: elb.delete_load_balancer(LoadBalancerArn=resources.load_balancer_arn),  # its listeners and rules too
            lambda: elb.delete_target_group(TargetGroupArn=resources.target_group_arn),
            *[(lambda sg=sg: ec2.delete_security_group(GroupId=sg)) for sg in resources.service_security_groups],
            *[(lambda sg=sg: ec2.delete_security_group(GroupId=sg)) for sg in resources.load_balancer_security_groups],
            lambda: clients.client("acm").delete_certificate(CertificateArn=resources.certificate_arn),
        ]
        for step in steps:
            try:
                step()
            except ClientError:  # gone already (removed by hand, as AWS would let a customer)
                pass
        if self.fronts is not None:
            self.fronts.close(resources.load_balancer_arn)
        resources.status, resources.updated_at = "DELETED", time.time()

    # ------------------------------------------------------------------ internals

    def _provision(self, region: str, cluster: str, service_name: str, configuration: dict) -> ExpressResources:
        clients = self.clients_for(region)
        ec2, elb = clients.client("ec2"), clients.client("elbv2")
        subnets = configuration["networkConfiguration"]["subnets"]
        found = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
        vpc = found[0]["VpcId"]
        public = all(self._public(ec2, vpc, s["SubnetId"]) for s in found)
        port = configuration["primaryContainer"]["containerPort"]
        suffix = uuid.uuid4().hex[:8]
        tags = [MANAGED_TAG, {"Key": "ecs:express-service", "Value": f"{cluster}/{service_name}"}]
        endpoint = endpoint_of(service_name, region)

        lb_sg = ec2.create_security_group(
            GroupName=f"ecs-express-gateway-alb-{suffix}", VpcId=vpc,
            Description=f"Load balancer of the ECS Express service {service_name}",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for p in (443, 80)])
        service_sg = ec2.create_security_group(
            GroupName=f"ecs-express-gateway-svc-{suffix}", VpcId=vpc,
            Description=f"Tasks of the ECS Express service {service_name}",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=service_sg, IpPermissions=[_from_group(port, lb_sg)])

        lb = elb.create_load_balancer(
            Name=f"ecs-express-gateway-alb-{suffix}", Subnets=subnets, SecurityGroups=[lb_sg],
            Scheme="internet-facing" if public else "internal", Type="application", IpAddressType="ipv4",
            Tags=tags)["LoadBalancers"][0]
        tg_arn = self._target_group(elb, vpc, port, configuration, tags)
        certificate = clients.client("acm").request_certificate(
            DomainName=endpoint, ValidationMethod="DNS", Tags=tags)["CertificateArn"]
        listener = elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06", Certificates=[{"CertificateArn": certificate}],
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "Not Found"}}],
            Tags=tags)["Listeners"][0]["ListenerArn"]
        rule = elb.create_rule(
            ListenerArn=listener, Priority=1, Tags=tags,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [endpoint]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}])["Rules"][0]["RuleArn"]

        if self.fronts is not None:
            self.fronts.open(lb["LoadBalancerArn"], internal=not public, listener_port=443)
        logs_config = configuration["primaryContainer"].get("awsLogsConfiguration") or {}
        log_group = logs_config.get("logGroup") or f"/aws/ecs/{cluster}/{service_name}"
        logs = clients.client("logs")
        try:
            logs.create_log_group(logGroupName=log_group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        return ExpressResources(
            load_balancer_arn=lb["LoadBalancerArn"], target_group_arn=tg_arn,
            load_balancer_security_groups=[lb_sg], service_security_groups=[service_sg], endpoint=endpoint,
            scheme=lb["Scheme"], access_type="PUBLIC" if public else "PRIVATE", listener_arn=listener,
            rule_arn=rule, certificate_arn=certificate, log_group=log_group, tags=tags)

    @staticmethod
    def _target_group(elb: Any, vpc: str, port: int, configuration: dict, tags: list[dict]) -> str:
        return elb.create_target_group(
            Name=f"ecs-gateway-tg-{uuid.uuid4().hex[:12]}", Protocol="HTTP", Port=port, VpcId=vpc,
            TargetType="ip", HealthCheckProtocol="HTTP", HealthCheckPath=configuration["healthCheckPath"],
            HealthCheckPort="traffic-port", Matcher={"HttpCode": "200"}, Tags=tags)["TargetGroups"][0]["TargetGroupArn"]

    @staticmethod
    def _public(ec2: Any, vpc: str, subnet_id: str) -> bool:
        """Whether the subnet's route table (its own, else the VPC's main one) sends 0.0.0.0/0 to an IGW."""
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])[
            "RouteTables"] or ec2.describe_route_tables(Filters=[
                {"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        return any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId", "").startswith("igw-")
                   and r.get("State", "active") == "active" for t in tables for r in t.get("Routes", []))


def _from_group(port: int, group: str) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "UserIdGroupPairs": [{"GroupId": group, "Description": "ECS Express load balancer"}]}
