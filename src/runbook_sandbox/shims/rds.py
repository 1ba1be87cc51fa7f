"""RDS shims: the RDS Proxy API moto 5.2.5 lacks.

- ``rds-proxy-endpoints`` - moto 5.2 has no ``CreateDBProxyEndpoint`` nor
  ``DescribeDBProxyEndpoints``. The shim serves both (and
  ``DeleteDBProxyEndpoint``): a custom endpoint of a proxy, in subnets of one
  VPC (not necessarily the proxy's) with its own ``VpcSecurityGroupIds`` (the
  VPC's default group when none is given), ``TargetRole``, and the address
  ``<name>.endpoint.proxy-<id>.<region>.rds.amazonaws.com``; the describe also
  lists each proxy's default endpoint (``IsDefault``), as AWS does.
"""

from __future__ import annotations

from typing import Any

SHIMS = ("rds-proxy-endpoints",)


def apply() -> None:
    _shim_rds_proxy_endpoints()


def _shim_rds_proxy_endpoints() -> None:
    import random
    import string

    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.models import ec2_backends
    from moto.rds import exceptions, responses

    class DBProxyEndpointNotFoundFault(exceptions.RDSClientError):
        def __init__(self, name: str) -> None:
            super().__init__("DBProxyEndpointNotFoundFault", f"The DB proxy endpoint {name} doesn't exist.")

    class DBProxyEndpointAlreadyExistsFault(exceptions.RDSClientError):
        def __init__(self, name: str) -> None:
            super().__init__("DBProxyEndpointAlreadyExistsFault", f"The DB proxy endpoint {name} already exists.")

    def store(self: Any) -> dict[str, dict[str, Any]]:
        if not hasattr(self.backend, "_shim_proxy_endpoints"):
            self.backend._shim_proxy_endpoints = {}
        return self.backend._shim_proxy_endpoints

    def proxy_of(self: Any, name: str) -> Any:
        proxy = self.backend.db_proxies.get(name)
        if proxy is None:
            raise exceptions.DBProxyNotFoundFault(name)
        return proxy

    def default_endpoint(proxy: Any) -> dict[str, Any]:
        return {
            "DBProxyEndpointName": "default", "DBProxyEndpointArn": proxy.arn, "DBProxyName": proxy.db_proxy_name,
            "Status": "available", "VpcId": proxy.vpc_id, "VpcSecurityGroupIds": list(proxy.vpc_security_group_ids),
            "VpcSubnetIds": list(proxy.vpc_subnet_ids), "Endpoint": proxy.endpoint, "CreatedDate": proxy.created_date,
            "TargetRole": "READ_WRITE", "IsDefault": True,
        }

    def create_db_proxy_endpoint(self: Any) -> ActionResult:
        params = self.params
        proxy = proxy_of(self, params["DBProxyName"])
        name = params["DBProxyEndpointName"]
        if name in store(self):
            raise DBProxyEndpointAlreadyExistsFault(name)
        ec2 = ec2_backends[self.backend.account_id][self.backend.region_name]
        subnets = ec2.describe_subnets(subnet_ids=params["VpcSubnetIds"])
        if len({s.vpc_id for s in subnets}) != 1:
            raise exceptions.InvalidSubnet(params["VpcSubnetIds"][0])
        groups = params.get("VpcSecurityGroupIds") or [ec2.get_default_security_group(subnets[0].vpc_id).id]
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        endpoint = {
            "DBProxyEndpointName": name,
            "DBProxyEndpointArn": f"arn:aws:rds:{self.backend.region_name}:{self.backend.account_id}:db-proxy-endpoint:prx-endpoint-{suffix}",
            "DBProxyName": proxy.db_proxy_name, "Status": "available", "VpcId": subnets[0].vpc_id,
            "VpcSecurityGroupIds": list(groups), "VpcSubnetIds": [s.id for s in subnets],
            "Endpoint": f"{name}.endpoint.proxy-{suffix}.{self.backend.region_name}.rds.amazonaws.com",
            "CreatedDate": utcnow(), "TargetRole": params.get("TargetRole") or "READ_WRITE", "IsDefault": False,
        }
        store(self)[name] = endpoint
        return ActionResult({"DBProxyEndpoint": endpoint})

    def describe_db_proxy_endpoints(self: Any) -> ActionResult:
        params = self.params
        name, proxy_name = params.get("DBProxyEndpointName"), params.get("DBProxyName")
        if proxy_name:
            proxy_of(self, proxy_name)
        endpoints = [default_endpoint(p) for p in self.backend.db_proxies.values()] + list(store(self).values())
        endpoints = [e for e in endpoints if (not proxy_name or e["DBProxyName"] == proxy_name)
                     and (not name or e["DBProxyEndpointName"] == name)]
        if name and not endpoints:
            raise DBProxyEndpointNotFoundFault(name)
        return ActionResult({"DBProxyEndpoints": endpoints})

    def delete_db_proxy_endpoint(self: Any) -> ActionResult:
        name = self.params["DBProxyEndpointName"]
        if name not in store(self):
            raise DBProxyEndpointNotFoundFault(name)
        return ActionResult({"DBProxyEndpoint": {**store(self).pop(name), "Status": "deleting"}})

    for method in (create_db_proxy_endpoint, describe_db_proxy_endpoints, delete_db_proxy_endpoint):
        setattr(responses.RDSResponse, method.__name__, method)
