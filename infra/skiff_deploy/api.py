"""API Gateway in front of the API function: a REST API built from the Chalice app's own Swagger (the
routes `chalice deploy` would create), deployed to the stack's stage.

A REST API rather than an HTTP API: Chalice routes by requestContext.resourcePath, which only a REST
API's resources carry. Its integration timeout (29 s) bounds a watch long-poll (chalicelib's 25 s cap).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from skiff_deploy import chalice_app
from skiff_deploy.config import StackSettings


@dataclass(frozen=True)
class Api:
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]


def api(s: StackSettings, *, region: str, function: aws.lambda_.Function, tags: dict[str, str]) -> Api:
    template = json.dumps(chalice_app.swagger(region), sort_keys=True)
    body = function.invoke_arn.apply(lambda arn: template.replace(chalice_app.INVOKE_ARN_PLACEHOLDER, arn))
    rest = aws.apigateway.RestApi("api", name=s.cluster, description=f"Skiff {s.cluster}: Kubernetes API",
                                  body=body, endpoint_configuration={"types": "REGIONAL"},
                                  put_rest_api_mode="overwrite", tags=tags)
    deployment = aws.apigateway.Deployment(
        "api-deployment", rest_api=rest.id,
        # A new deployment whenever the routes change (the body names the function, which does not).
        triggers={"routes": hashlib.sha256(template.encode()).hexdigest()},
        opts=pulumi.ResourceOptions(delete_before_replace=False))
    stage = aws.apigateway.Stage("api-stage", rest_api=rest.id, deployment=deployment.id, stage_name=s.stage,
                                 tags=tags)
    aws.lambda_.Permission("api-invoke", action="lambda:InvokeFunction", function=function.name,
                           principal="apigateway.amazonaws.com",
                           source_arn=rest.execution_arn.apply(lambda a: f"{a}/*/*"))
    return Api(rest_api=rest, stage=stage, url=stage.invoke_url)
