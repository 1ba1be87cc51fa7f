"""The simulated service URL: envoy's own 404 versus the app's answers."""

from __future__ import annotations

import json


def test_no_healthy_deployment_means_envoy_404_without_upstream(load, get):
    sb = load("field-report")
    base = "http://" + sb.service_state("nerava-backend")["url"]
    for path, method in [("/healthz", "GET"), ("/", "GET"), ("/v1/healthz", "POST"), ("/health", "HEAD")]:
        status, headers, body = get(base + path, method)
        assert status == 404, path
        assert headers["server"] == "envoy"
        assert body == b""
        assert "x-envoy-upstream-service-time" not in headers


def test_serving_app_answers_health_and_fastapi_404(load, get):
    sb = load("healthy")
    base = "http://" + sb.service_state("nerava-backend")["url"]
    status, headers, body = get(base + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["server"] == "envoy" and int(headers["x-envoy-upstream-service-time"]) >= 0
    assert headers["content-type"] == "application/json"

    status, headers, body = get(base + "/health")
    assert status == 404 and json.loads(body) == {"detail": "Not Found"}
    assert headers["server"] == "envoy" and "x-envoy-upstream-service-time" in headers
    assert headers["content-type"] == "application/json"

    status, headers, body = get(base + "/healthz?verbose=1", "HEAD")
    assert status == 200 and body == b""
    status, _, body = get(base + "/healthz", "POST")
    assert status == 405 and json.loads(body) == {"detail": "Method Not Allowed"}


def test_each_service_has_its_own_url(load, raw, get, waiter):
    sb = load("healthy")
    status, _, body = raw("CreateService", {"ServiceName": "second", "SourceConfiguration": {"ImageRepository": {
        "ImageIdentifier": "public.ecr.aws/sandbox/other:1", "ImageRepositoryType": "ECR_PUBLIC"}}})
    assert status == 200
    url = body["Service"]["ServiceUrl"]
    assert url != sb.service_state("nerava-backend")["url"]
    assert get("http://" + url + "/")[0] == 404  # still creating
    waiter(lambda: sb.service_state("second")["status"] == "RUNNING")
    # An image the sandbox does not know serves "/" on its configured port (8080 by default).
    status, headers, body = get("http://" + url + "/")
    assert status == 200 and "x-envoy-upstream-service-time" in headers
