from runbook.aws import is_read_operation
from runbook.model import ApiCall, Status


def _iam_name(call: ApiCall) -> str:
    """authorize_security_group_ingress -> AuthorizeSecurityGroupIngress, as is_read_operation takes it."""
    return "".join(word.title() for word in call.operation.split("_"))


def test_cli_twin_of_authorize_is_exact_and_quoted():
    call = ApiCall(
        "ec2",
        "authorize_security_group_ingress",
        {
            "GroupId": "sg-0e4cc786d9053f05f",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": "sg-00bc5ec63287eacdd", "Description": "it's the connector"}]}
            ],
        },
    )
    assert call.cli("us-east-1") == (
        "aws ec2 authorize-security-group-ingress --group-id sg-0e4cc786d9053f05f --ip-permissions "
        "'[{\"IpProtocol\":\"tcp\",\"FromPort\":6379,\"ToPort\":6379,\"UserIdGroupPairs\":[{\"GroupId\":\"sg-00bc5ec63287eacdd\",\"Description\":\"it'\"'\"'s the connector\"}]}]'"
        " --region us-east-1"
    )
    assert not is_read_operation(_iam_name(call))


def test_cli_twin_of_apprunner_call():
    call = ApiCall("apprunner", "start_deployment", {"ServiceArn": "arn:aws:apprunner:us-east-1:1:service/x/y"})
    assert call.cli() == "aws apprunner start-deployment --service-arn arn:aws:apprunner:us-east-1:1:service/x/y"
    assert not is_read_operation(_iam_name(call))
    assert is_read_operation(_iam_name(ApiCall("ec2", "describe_security_groups", {})))


def test_passed_statuses():
    assert Status.OK.passed and Status.WARN.passed and Status.SKIPPED.passed  # skipped: nothing to check
    assert not Status.FAIL.passed and not Status.ERROR.passed
