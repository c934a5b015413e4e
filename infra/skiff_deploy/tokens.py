"""The cluster's first tokens: random, kept in SSM Parameter Store as SecureStrings, and registered in
the tokens table by their SHA-256 (the shape of chalicelib.store.models.TokenRecord), as
chalicelib.api.auth.issue_token would write them.

The admin token is what the kubeconfig command reads. The nodes' bootstrap token is registered only
if the API knows a "bootstrap" role (chalicelib.api.auth.ROLES); until then only its parameter exists.
"""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_aws as aws
import pulumi_random as random

TOKEN_PREFIX = "skiff."
"""The prefix issue_token gives every token."""


def _item(token: str, role: str, description: str) -> str:
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    return json.dumps({"token_hash": {"S": digest}, "role": {"S": role}, "description": {"S": description},
                       # A fixed value: a timestamp taken at each `pulumi up` would rewrite the item every time.
                       "created": {"S": "pulumi up"}})


def roles() -> tuple[str, ...]:
    from chalicelib.api.auth import ROLES

    return tuple(ROLES)


def token(name: str, *, cluster: str, role: str, table: aws.dynamodb.Table, tags: dict[str, str],
          description: str) -> tuple[aws.ssm.Parameter, aws.dynamodb.TableItem | None]:
    """A token for `role`: an SSM SecureString, and its hash in the tokens table if the API knows `role`."""
    secret = random.RandomPassword(f"{name}-secret", length=43, special=False)
    value: pulumi.Output[str] = pulumi.Output.secret(secret.result.apply(lambda r: TOKEN_PREFIX + r))  # type: ignore[arg-type]
    parameter = aws.ssm.Parameter(f"{name}-parameter", name=f"/skiff/{cluster}/{name}", type="SecureString",
                                  value=value, description=description, tags=tags)
    item = None
    if role in roles():
        item = aws.dynamodb.TableItem(f"{name}-item", table_name=table.name, hash_key="token_hash",
                                      # only the hash is stored: not a secret
                                      item=pulumi.Output.unsecret(value.apply(lambda t: _item(t, role, description))))
    return parameter, item
