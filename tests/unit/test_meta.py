"""ObjectMeta, name, label, annotation and selector validation, with kube-apiserver's messages."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types import meta

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case "
    "alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def obj(md: Any, kind: str = "ConfigMap") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": md}


def triples(causes: list[Cause]) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in causes]


@pytest.mark.parametrize(
    "name",
    ["a", "abc", "a-b", "a.b", "0", "123-abc", "example.com", "a" * 253, ".".join(["a" * 63] * 3) + ".abc"],
)
def test_valid_subdomain_names(name: str) -> None:
    assert meta.validate_metadata(obj({"name": name, "namespace": "ns"}), namespaced=True) == []


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("Foo", [SUBDOMAIN_MSG]),
        ("-a", [SUBDOMAIN_MSG]),
        ("a-", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        ("a_b", [SUBDOMAIN_MSG]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN_MSG]),
    ],
)
def test_invalid_subdomain_names(name: str, messages: list[str]) -> None:
    causes = meta.validate_metadata(obj({"name": name, "namespace": "ns"}), namespaced=True)
    assert triples(causes) == [
        ("metadata.name", f.INVALID, f"Invalid value: {f.render(name)}: {m}") for m in messages
    ]


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("good", []),
        ("a.b", ["must not contain dots"]),
        ("Bad", [LABEL_MSG]),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_label_names(name: str, messages: list[str]) -> None:
    causes = meta.validate_metadata(obj({"name": name}, "Namespace"), namespaced=False, name_is_label=True)
    assert [c.message for c in causes] == [f"Invalid value: {f.render(name)}: {m}" for m in messages]


def test_services_are_dns1035_labels() -> None:
    service = obj({"name": "1abc", "namespace": "ns"}, "Service")
    [cause] = meta.validate_metadata(service, namespaced=True, name_is_label=True)
    assert cause.field == "metadata.name"
    assert (
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        in cause.message
    )
    assert meta.validate_metadata(obj({"name": "abc-1", "namespace": "ns"}, "Service"), namespaced=True) == []


def test_name_required_unless_generate_name() -> None:
    assert triples(meta.validate_metadata(obj({"namespace": "ns"}), namespaced=True)) == [
        ("metadata.name", f.REQUIRED, "Required value: name or generateName is required")
    ]
    assert meta.validate_metadata(obj({"generateName": "web-", "namespace": "ns"}), namespaced=True) == []
    [cause] = meta.validate_metadata(obj({"generateName": "Web-", "namespace": "ns"}), namespaced=True)
    assert cause.field == "metadata.generateName"


def test_namespace_rules() -> None:
    assert triples(meta.validate_metadata(obj({"name": "a"}), namespaced=True)) == [
        ("metadata.namespace", f.REQUIRED, "Required value")
    ]
    assert triples(meta.validate_metadata(obj({"name": "a", "namespace": "x"}), namespaced=False)) == [
        ("metadata.namespace", f.FORBIDDEN, "Forbidden: not allowed on this type")
    ]
    [cause] = meta.validate_metadata(obj({"name": "a", "namespace": "a.b"}), namespaced=True)
    assert cause.field == "metadata.namespace" and cause.message.endswith("must not contain dots")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"app": "web", "example.com/tier": "front", "a": ""}, []),
        ({"app": "x" * 63}, []),
        ({"app": "x" * 64}, [("x" * 64, "must be no more than 63 characters")]),
        ({"app": "-bad"}, [("-bad", LABEL_VALUE_MSG)]),
        ({"bad key": "v"}, [("bad key", QNAME_MSG)]),
        ({"/name": "v"}, [("/name", "prefix part must be non-empty")]),
        ({"Example.com/name": "v"}, [("Example.com/name", "prefix part " + SUBDOMAIN_MSG)]),
        (
            {"example.com/": "v"},
            [("example.com/", "name part must be non-empty"), ("example.com/", QNAME_MSG)],
        ),
        ({"k" * 64: "v"}, [("k" * 64, "name part must be no more than 63 characters")]),
        (
            {"a/b/c": "v"},
            [
                (
                    "a/b/c",
                    "a qualified name must consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and "
                    "end with an alphanumeric character (e.g. 'MyName', "
                    " or 'my.name',  or '123-abc', regex used "
                    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
                    "subdomain prefix and '/' (e.g. 'example.com/MyName')",
                )
            ],
        ),
    ],
)
def test_labels(labels: dict[str, str], expected: list[tuple[str, str]]) -> None:
    causes = meta.validate_metadata(obj({"name": "a", "namespace": "n", "labels": labels}), namespaced=True)
    assert triples(causes) == [
        ("metadata.labels", f.INVALID, f"Invalid value: {f.render(v)}: {m}") for v, m in expected
    ]


def test_label_of_wrong_type() -> None:
    causes = meta.validate_metadata(obj({"name": "a", "namespace": "n", "labels": {"a": 1}}), namespaced=True)
    assert triples(causes) == [
        ("metadata.labels[a]", f.TYPE_INVALID, "Invalid value: 1: must be of type string")
    ]
    causes = meta.validate_metadata(obj({"name": "a", "namespace": "n", "labels": "x"}), namespaced=True)
    assert [c.field for c in causes] == ["metadata.labels"]


def test_annotations() -> None:
    ok = {"name": "a", "namespace": "n", "annotations": {"Example.COM/Key": "anything at all", "k": ""}}
    assert meta.validate_metadata(obj(ok), namespaced=True) == []
    [cause] = meta.validate_metadata(
        obj({"name": "a", "namespace": "n", "annotations": {"a b": "v"}}), namespaced=True
    )
    assert cause.field == "metadata.annotations" and cause.message.startswith(
        'Invalid value: "a b": name part'
    )


def test_annotations_total_size() -> None:
    fits = {"name": "a", "namespace": "n", "annotations": {"k": "v" * (256 * 1024 - 1)}}
    assert meta.validate_metadata(obj(fits), namespaced=True) == []
    big = {"name": "a", "namespace": "n", "annotations": {"k": "v" * (256 * 1024)}}
    assert triples(meta.validate_metadata(obj(big), namespaced=True)) == [
        ("metadata.annotations", f.TOO_LONG, "Too long: may not be more than 262144 bytes")
    ]


def owner(**kw: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1", **kw}


def test_owner_references() -> None:
    md = {"name": "a", "namespace": "n", "ownerReferences": [owner(controller=True), owner(uid="u-2")]}
    assert meta.validate_metadata(obj(md), namespaced=True) == []
    md["ownerReferences"] = [{"controller": False}]
    assert triples(meta.validate_metadata(obj(md), namespaced=True)) == [
        ("metadata.ownerReferences.apiVersion", f.INVALID, 'Invalid value: "": version must not be empty'),
        ("metadata.ownerReferences.kind", f.INVALID, 'Invalid value: "": kind must not be empty'),
        ("metadata.ownerReferences.name", f.INVALID, 'Invalid value: "": name must not be empty'),
        ("metadata.ownerReferences.uid", f.INVALID, 'Invalid value: "": uid must not be empty'),
    ]


def test_at_most_one_controller() -> None:
    refs = [owner(controller=True), owner(name="other", uid="u-2", controller=True)]
    [cause] = meta.validate_metadata(
        obj({"name": "a", "namespace": "n", "ownerReferences": refs}), namespaced=True
    )
    assert cause.field == "metadata.ownerReferences"
    assert cause.message.startswith(
        'Invalid value: [{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs",'
    )
    assert cause.message.endswith(
        "Only one reference can have Controller set to true. "
        'Found "true" in references for ReplicaSet/rs and '
        "ReplicaSet/other"
    )


def test_events_cannot_own() -> None:
    refs = [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]
    [cause] = meta.validate_metadata(
        obj({"name": "a", "namespace": "n", "ownerReferences": refs}), namespaced=True
    )
    assert cause.message.endswith("/v1, Kind=Event is disallowed from being an owner")


@pytest.mark.parametrize(
    ("finalizers", "fields"),
    [
        (["kubernetes", "example.com/cleanup", "foregroundDeletion"], []),
        (["bad name"], ["metadata.finalizers"]),
        ([5], ["metadata.finalizers[0]"]),
        (["orphan", "foregroundDeletion"], ["metadata.finalizers"]),
    ],
)
def test_finalizers(finalizers: list[Any], fields: list[str]) -> None:
    causes = meta.validate_metadata(
        obj({"name": "a", "namespace": "n", "finalizers": finalizers}), namespaced=True
    )
    assert [c.field for c in causes] == fields


def test_generation_and_metadata_type() -> None:
    [cause] = meta.validate_metadata(obj({"name": "a", "namespace": "n", "generation": -1}), namespaced=True)
    assert (cause.field, cause.message) == (
        "metadata.generation",
        "Invalid value: -1: must be greater than or equal to 0",
    )
    causes = meta.validate_metadata(obj("nope"), namespaced=True)
    assert [c.field for c in causes] == ["metadata", "metadata.name", "metadata.namespace"]


def test_custom_path() -> None:
    causes = meta.validate_metadata(
        {"metadata": {"labels": {"a": "-"}}}, namespaced=False, path="spec.template.metadata"
    )
    assert [c.field for c in causes] == ["spec.template.metadata.name", "spec.template.metadata.labels"]


def test_reusable_name_checks() -> None:
    assert meta.validate_dns1123_label("ok", "x") == []
    assert [c.field for c in meta.validate_dns1123_label("a.b", "spec.x")] == ["spec.x"]
    assert meta.validate_dns1123_subdomain("a.b", "x") == []
    assert meta.validate_dns1123_subdomain("A", "x")[0].message == f'Invalid value: "A": {SUBDOMAIN_MSG}'
    assert meta.validate_dns1035_label("1a", "x")[0].reason == f.INVALID


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"app": "x"}}, []),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, []),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, []),
        (
            {"matchExpressions": [{"key": "app", "operator": "In"}]},
            [
                (
                    "s.matchExpressions[0].values",
                    f.REQUIRED,
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            ],
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "DoesNotExist", "values": ["a"]}]},
            [
                (
                    "s.matchExpressions[0].values",
                    f.FORBIDDEN,
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            ],
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["a"]}]},
            [
                (
                    "s.matchExpressions[0].operator",
                    f.INVALID,
                    'Invalid value: "Like": not a valid selector operator',
                )
            ],
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["-"]}]},
            [("s.matchExpressions[0].values[0]", f.INVALID, f'Invalid value: "-": {LABEL_VALUE_MSG}')],
        ),
        (
            {"matchLabels": {"app": "-"}},
            [("s.matchLabels", f.INVALID, f'Invalid value: "-": {LABEL_VALUE_MSG}')],
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert triples(meta.validate_label_selector(selector, "s")) == expected


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({}, {}, True),
        (None, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_selector_matching(selector: Any, labels: dict[str, str], matches: bool) -> None:
    assert meta.selector_matches(selector, labels) is matches


def test_render_matches_go() -> None:
    assert f.render('a"b') == '"a\\"b"'
    assert f.render(5) == "5"
    assert f.render(True) == "true"
    assert f.render(None) == "null"
    assert f.render({"b": 1, "a": "<"}) == '{"a":"\\u003c","b":1}'
    assert f.render(f.GoStruct(Type="x", Rolling=None)) == '{"Type":"x","Rolling":null}'
